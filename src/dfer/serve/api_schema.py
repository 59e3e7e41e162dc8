"""What the service's API promises, for its OpenAPI document: artifacts, bodies and every error's shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from dfer.serve.jobs import JobStatus

ARTIFACTS = {
    "predictions.csv": "text/csv",
    "tracks.csv": "text/csv",
    "summary.json": "application/json",
    "timeline.png": "image/png",
    "annotated.mp4": "video/mp4",
    "episodes.csv": "text/csv",
    "people.csv": "text/csv",
    "people.jpg": "image/jpeg",
    "explain.mp4": "video/mp4",
}
# The OpenAPI description of what the routes answer and take (the upload is parsed by hand, so that
# its size limit applies while it streams; this tells clients and generators its real shape).
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_ERROR_TEXT = {
    400: "bad parameters, Host or token in a URL", 401: "missing or wrong token, or a bad signed link",
    403: "cross-site request, or a bad signed link on a server without a token", 408: "the upload stalled or trickled",
    404: "unknown job or artifact", 413: "upload over a limit (bytes, duration, frame, fps)",
    415: "not a readable video", 503: "queue full or the model still loading (see Retry-After)",
    507: "too little free disk space on the server (--min-free)"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"description": _ERROR_TEXT[c], "content": {"application/json": {"schema": ERROR_SCHEMA}}} for c in codes}


UPLOAD_SCHEMA = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["video"], "additionalProperties": False,
        "properties": {
            "video": {"type": "string", "format": "binary", "description": "the video file (decoded to check it)"},
            "stride": {"type": "integer", "minimum": 1, "maximum": 100_000, "description": "frames between windows"},
            "window": {"type": "number", "minimum": 0.1, "maximum": 10.0, "description": "window span, seconds"},
            "detect_every": {"type": "integer", "minimum": 1, "maximum": 30},
            "min_confidence": {"type": "number", "minimum": 0.0, "maximum": 1.0},
            "explain": {"type": "string", "enum": ["true", "false"], "description": "also make explain.mp4"},
        }}}}},
}
JOB_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "string"}, "status": {"type": "string", "enum": [s.value for s in JobStatus]},
    "progress": {"type": "number"}, "filename": {"type": "string"}, "error": {"type": "string"},
    "summary": {"type": "object"}, "artifacts": {"type": "array", "items": {"type": "string"}},
    "artifact_urls": {"type": "object", "additionalProperties": {"type": "string"}}}}


def openapi_document(app: FastAPI, *, token: bool):
    """FastAPI's document as this server runs: without its 422 answers (validation errors here are 400s,
    described per route), and with the bearer token and its 401s only when the server has a token."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
                    if not token:
                        op.pop("security", None)
                        op.get("responses", {}).pop("401", None)
            if not token:
                doc.get("components", {}).pop("securitySchemes", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    return openapi
