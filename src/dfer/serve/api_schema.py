"""What the service's API promises: the artifacts, the upload's fields (from dfer.serve.params), each answer
as a pydantic model (the routes return them, and FastAPI writes the OpenAPI document from them), and every
error's shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from dfer.serve.jobs import Job, JobStatus
from dfer.serve.params import JobParams, QueuedParams

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
    404: "unknown job or artifact", 409: "not offered in this server's mode (live off; uploads in camera mode)",
    413: "upload over a limit (bytes, duration, frame, fps)", 415: "not a readable video",
    503: "queue full, live sessions at their limit, or the model still loading (see Retry-After)",
    507: "too little free disk space on the server (--min-free)"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"description": _ERROR_TEXT[c], "content": {"application/json": {"schema": ERROR_SCHEMA}}} for c in codes}


def _upload_schema() -> dict[str, Any]:
    """The multipart form of POST /v1/jobs: the video, and JobParams' fields with their bounds (the form
    carries text, so `explain` is the string true or false)."""
    props: dict[str, Any] = {"video": {"type": "string", "format": "binary",
                                       "description": "the video file (decoded to check it)"}}
    for name, field in JobParams.model_json_schema()["properties"].items():
        if name == "explain":
            props[name] = {"type": "string", "enum": ["true", "false"], "description": field.get("description", "")}
            continue
        kind = next((a for a in field.get("anyOf", [field]) if a.get("type") != "null"), {})
        props[name] = {k: v for k, v in kind.items() if k in ("type", "minimum", "maximum")}
        if field.get("description"):
            props[name]["description"] = field["description"]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["video"], "additionalProperties": False, "properties": props}}}}}


UPLOAD_SCHEMA = _upload_schema()


class JobView(BaseModel):
    """A job as the API shows it: with its summary, artifacts and signed links once it is done."""

    id: str
    status: JobStatus
    progress: float
    filename: str
    created: float
    updated: float
    params: QueuedParams
    error: str | None = None
    summary: dict[str, Any] | None = None
    artifacts: list[str] | None = None
    artifact_urls: dict[str, str] | None = None

    @classmethod
    def of(cls, job: Job, **done: Any) -> JobView:
        d = job.to_dict()
        return cls(**{**d, "params": job.params}, **done)


class JobList(BaseModel):
    jobs: list[JobView]


class Queued(BaseModel):
    """POST /v1/jobs: the new job's id."""

    id: str
    status: JobStatus


class Deleted(BaseModel):
    id: str
    deleted: bool


class ModelView(BaseModel):
    """GET /v1/model: the model as a worker loaded it (no server paths)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    class_names: list[str]
    clip: dict[str, int]
    class_colours: dict[str, str]
    person_colours: list[str]
    backend: str
    backend_detail: str
    precision: str
    backend_choice: dict[str, Any]
    face: dict[str, Any]
    model_info: dict[str, Any]


class LiveInfo(BaseModel):
    """GET /v1/live: the live mode, the sessions open and the limits a client must keep."""

    mode: str = Field(description="off | browser (the page's camera) | camera (a source the server reads)")
    sessions: int
    max_sessions: int
    viewers: int = Field(description="camera mode: pages watching")
    max_frame: list[int] = Field(description="largest frame WxH, either orientation")
    max_frame_bytes: int = Field(description="largest JPEG a frame may be")
    fps: list[int] = Field(description="lowest and highest frame rate a client may send at")
    idle_s: float = Field(description="a session without a frame for this long ends")
    ticket_s: float


class LiveTicket(LiveInfo):
    """POST /v1/live: a ticket for one WebSocket at /v1/live/ws (its first message), single-use."""

    ticket: str
    expires_in: float


class Health(BaseModel):
    """GET /healthz: the status alone without the token; with it, each worker and the queue."""

    status: str
    workers: list[dict[str, Any]] | None = None
    queued: int | None = None
    running: int | None = None


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
