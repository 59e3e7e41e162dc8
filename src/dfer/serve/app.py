"""The HTTP service: a versioned JSON API over durable jobs, and a web page.

    POST   /v1/jobs                 multipart: video (file), stride, window, detect_every, min_confidence,
                                    explain (true: also explain.mp4) -> 202 {id, status}
    GET    /v1/jobs                 the latest jobs
    GET    /v1/jobs/{id}            {id, status, progress, error | summary}
    GET    /v1/jobs/{id}/{name}     predictions.csv, tracks.csv, summary.json, timeline.png, annotated.mp4
    DELETE /v1/jobs/{id}            a running job: cancelled (202); any other: the job and its files
    GET    /v1/model                class names, clip size, backend and precision
    GET    /healthz                 liveness and each worker's state (no auth)
    GET    /metrics                 Prometheus text format
    GET    /                        the web page

Errors are JSON `{"error": "<one sentence>"}`. With a token, every route but / and /healthz needs
`Authorization: Bearer <token>` (see dfer.serve.security). The API process never runs the model:
jobs run in worker processes (dfer.serve.pool).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dfer.scale import RayOptions
from dfer.serve.config import ServeConfig
from dfer.serve.disk import DataDir, human_bytes
from dfer.serve.jobs import JobStore
from dfer.serve.metrics import ServiceMetrics
from dfer.serve.pool import PoolLimits, WorkerPool
from dfer.serve.probe import ProbeError, probe_upload
from dfer.serve.security import Policy, install, own_host_names, page_csp
from dfer.serve.spec import ModelSpec, WorkerSetup

ARTIFACTS = {
    "predictions.csv": "text/csv",
    "tracks.csv": "text/csv",
    "summary.json": "application/json",
    "timeline.png": "image/png",
    "annotated.mp4": "video/mp4",
    "episodes.csv": "text/csv",
    "explain.mp4": "video/mp4",
}
# Bounds that keep a worker's memory flat for every accepted combination: a face's crop buffer holds
# one window (<= 10 s x fps crops of 128x128x3: 118 MB per face at 240 fps), the tracker at most
# (max_missed + 1) x detect_every frames (<= 90), the annotator at most 512 MB of frames; the stride
# changes how often windows are scored, not what is held.
PARAMS = {"stride": (int, 1, 100_000), "window": (float, 0.1, 10.0), "detect_every": (int, 1, 30),
          "min_confidence": (float, 0.0, 1.0)}
# The OpenAPI description of what the routes answer and take (the upload is parsed by hand, so that
# its size limit applies while it streams; this tells clients and generators its real shape).
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_ERROR_TEXT = {
    400: "bad parameters, Host or token in a URL", 401: "missing or wrong token", 403: "cross-site request or bad link",
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
    "id": {"type": "string"}, "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
    "progress": {"type": "number"}, "filename": {"type": "string"}, "error": {"type": "string"},
    "summary": {"type": "object"}, "artifacts": {"type": "array", "items": {"type": "string"}},
    "artifact_urls": {"type": "object", "additionalProperties": {"type": "string"}}}}


FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.message = message


def create_app(model: ModelSpec, config: ServeConfig, *, start_workers: bool = True, log=print) -> FastAPI:
    """The FastAPI app over `config.data_dir`; worker processes that open `model` start with the app
    and stop with it (`start_workers=False`: none, jobs only queue)."""
    database = None
    if config.shared_dir is not None:  # files on the shared folder, the database on this machine's disk
        Path(config.data_dir).mkdir(parents=True, exist_ok=True)
        database = Path(config.data_dir).resolve() / "jobs.sqlite"
    disk = DataDir(Path(config.shared_dir or config.data_dir).resolve(), database)
    store = JobStore(disk.database)
    metrics = ServiceMetrics(store.count, log)
    setup = WorkerSetup(model, disk.root, keep_uploads=config.keep_uploads, explain_checkpoint=config.explain_checkpoint,
                        parent_pid=os.getpid(), database=database)
    limits = PoolLimits(config.workers, config.max_attempts, config.job_timeout, config.worker_memory)
    pool = WorkerPool(store, setup, limits, metrics=metrics, log=log, tick_every=config.sweep_every,
                      on_tick=lambda: _housekeeping(store, disk, config, log, at_start=False),
                      make_worker=_ray_factory(setup, store, disk, config) if config.engine == "ray" else None)
    max_bytes = int(config.max_upload_mb * 1024 * 1024)

    started = []

    def startup() -> None:
        """Recover interrupted jobs, sweep, start the workers and wait for the model (once; ConfigError
        when the workers cannot load it). `dfer serve` calls it before binding the port."""
        if started:
            return
        again, failed = store.recover_interrupted(config.max_attempts)
        if again:
            log(f"re-queued {len(again)} job(s) interrupted by the last shutdown: {', '.join(again)}")
        if failed:
            log(f"failed {len(failed)} job(s) the server stopped on {config.max_attempts} times: {', '.join(failed)}")
        _housekeeping(store, disk, config, log, at_start=True)
        if start_workers:
            pool.start()
            d = pool.description
            log(f"{len(pool.slots)} worker process(es) ready: {d['backend_detail']} ({d['backend_choice'].get('why')})")
        started.append(True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(startup)
        yield
        if start_workers:
            await run_in_threadpool(pool.stop)
        log("shutting down: workers stopped, unfinished jobs stay queued")

    # No /docs or /redoc: their pages load scripts from a CDN, which the Content-Security-Policy forbids;
    # /openapi.json (token-protected like the API) works with any OpenAPI viewer or client generator.
    app = FastAPI(title="dfer", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Dynamic facial expression recognition on uploaded videos.")
    page_html = resources.files("dfer.serve").joinpath("static/index.html").read_text("utf-8")
    policy = Policy(config.token, own_host_names(config.host, config.allowed_hosts), csp=page_csp(page_html))
    install(app, policy, log, observe=metrics.request)

    def openapi() -> dict[str, Any]:
        """FastAPI's document without its 422 answers: validation errors here are 400s, described per route."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    app.state.store, app.state.pool, app.state.config, app.state.startup = store, pool, config, startup

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):  # 404, 405 (with its Allow header)...
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of every route of this path, not only the first route's
            path = request.url.path
            methods = {m for r in app.routes if isinstance(r, APIRoute) and r.path_regex.match(path) for m in r.methods}
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"bad request: {where} {first.get('msg', '')}".strip()}, status_code=400)

    # Documents the bearer token in the OpenAPI schema; the security middleware enforces it on every route.
    auth = HTTPBearer(auto_error=False)

    def job_or_404(job_id: str):
        try:
            uuid.UUID(job_id)
        except ValueError:
            raise ApiError(404, f"no job {job_id!r}") from None
        job = store.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        return job

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 while a worker process is alive, 503 when none is; each worker's state either way (no token)."""
        states = pool.states() if start_workers else []
        alive = any(w["alive"] for w in states) or not start_workers
        body = {"status": "ok" if alive else "no worker alive", "workers": states,
                "queued": store.count("queued"), "running": store.count("running")}
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/metrics", dependencies=[Depends(auth)], response_class=PlainTextResponse,
             responses={200: {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}, **errors(400, 401)})
    def prometheus() -> Response:
        """Prometheus text format: jobs by status, queue depth, job seconds, worker restarts, bytes, latency."""
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/model", dependencies=[Depends(auth)], responses=errors(400, 401, 503))
    def model_info() -> dict[str, Any]:
        """The model as a worker loaded it: class names, clip, runtime and precision (no server paths)."""
        if pool.description is None:
            raise ApiError(503, "the model is still loading in the workers", headers={"Retry-After": "5"})
        return pool.description

    @app.post("/v1/jobs", status_code=202, dependencies=[Depends(auth)], openapi_extra=UPLOAD_SCHEMA,
              responses={202: {"description": "queued", "content": {"application/json": {"schema": JOB_SCHEMA}}},
                         **errors(400, 401, 403, 413, 415, 503, 507)})
    async def submit(request: Request) -> dict[str, Any]:
        _check_free_space(disk, config.min_free)
        if store.count("queued") >= config.max_queue:
            raise ApiError(503, f"the queue is full ({config.max_queue} jobs waiting); try again later",
                           headers={"Retry-After": "30"})
        job_id = str(uuid.uuid4())
        filename, params, tmp = await _receive(request, disk.incoming(job_id), max_bytes)
        if params.get("explain") and config.explain_checkpoint is None:
            tmp.unlink(missing_ok=True)
            raise ApiError(400, "explain=true needs the server to run a dfer checkpoint (.pt), not an exported model")
        try:  # in a separate process with a deadline: the event loop never waits on FFmpeg
            info = await probe_upload(tmp, config.probe_command, config.probe_timeout)
        except ProbeError as exc:
            await run_in_threadpool(tmp.unlink, True)
            raise ApiError(415, f"{filename}: not a readable video ({exc})") from None
        limit = _over_limit(info, config)
        if limit:
            await run_in_threadpool(tmp.unlink, True)
            raise ApiError(413, f"{filename}: {limit}")
        params["num_frames"] = int(info["frames"])
        params["duration_s"] = round(int(info["frames"]) / float(info["fps"]), 3) if info.get("fps") else 0.0
        size = tmp.stat().st_size
        try:
            _check_free_space(disk, config.min_free)  # this upload may have taken the last of it
        except ApiError:
            await run_in_threadpool(tmp.unlink, True)
            raise
        await run_in_threadpool(tmp.replace, disk.upload(job_id))  # a server-made name, then recorded
        await run_in_threadpool(store.create, job_id, params, filename)
        metrics.bytes_uploaded.inc(size)
        metrics.job(job_id, "queued")
        return {"id": job_id, "status": "queued"}

    @app.get("/v1/jobs", dependencies=[Depends(auth)], responses=errors(400, 401))
    def list_jobs(limit: int = 100) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in store.list(max(1, min(limit, 1000)))]}

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(auth)], responses={
        200: {"description": "the job", "content": {"application/json": {"schema": JOB_SCHEMA}}}, **errors(400, 401, 404)})
    def get_job(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        out = job.to_dict()
        if job.status == "done":
            out["summary"] = json.loads((disk.result(job_id) / "summary.json").read_text())
            out["artifacts"] = [n for n in ARTIFACTS if (disk.result(job_id) / n).is_file()]
            out["artifact_urls"] = {n: policy.signed_url(job.id, n) for n in out["artifacts"]}
        return out

    @app.get("/v1/jobs/{job_id}/{name}", dependencies=[Depends(auth)], response_class=FileResponse,
             responses={200: {"description": "the artifact (HTTP range requests work)",
                              "content": {t: {} for t in sorted(set(ARTIFACTS.values()))}},
                        **errors(400, 401, 403, 404)})
    def artifact(job_id: str, name: str, expires: str = "", sig: str = ""):
        if sig and not policy.link_valid(job_id, name, expires, sig):
            raise ApiError(403, "this link has expired or was made for another artifact; get a fresh one from "
                                "GET /v1/jobs/{id} (artifact_urls)")
        job = job_or_404(job_id)
        if name not in ARTIFACTS:
            raise ApiError(404, f"no artifact {name!r}; jobs have {', '.join(ARTIFACTS)}")
        path = disk.result(job.id) / name  # only fixed names under a server-made id
        if job.status != "done" or not path.is_file():
            raise ApiError(404, f"job {job_id} has no {name} (status {job.status})")
        return FileResponse(path, media_type=ARTIFACTS[name], filename=name, content_disposition_type="inline")

    @app.delete("/v1/jobs/{job_id}", dependencies=[Depends(auth)], responses={
        200: {"description": "deleted with its files"}, 202: {"description": "running: cancelled, its worker stops"},
        **errors(400, 401, 403, 404)})
    def delete_job(job_id: str) -> JSONResponse:
        job = job_or_404(job_id)
        before = store.cancel(job.id)  # atomic: a worker claiming it meanwhile cannot slip in between
        if before == "running":  # the worker sees it at its next progress write and removes its outputs
            return JSONResponse({"id": job.id, "status": "cancelled"}, status_code=202)
        store.delete(job.id)
        disk.remove_all(job.id)
        return JSONResponse({"id": job.id, "deleted": True})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html)

    return app


async def _limited(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused (413) as soon as it passes the limit: never held whole in memory."""
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > max_bytes:
            raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
        yield chunk


async def _receive(request: Request, tmp: Path, max_bytes: int) -> tuple[str, dict[str, Any], Path]:
    """Parse the multipart form (files spool to disk); returns (client file name, params, temp path)."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise ApiError(413, f"upload larger than the limit of {max_bytes / 2**20:.0f} MB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send the video as multipart/form-data with a file field named 'video'")
    try:
        form = await MultiPartParser(request.headers, _limited(request, max_bytes), max_files=1, max_fields=10).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart form: {exc.message}") from None
    video = form.get("video")
    if not isinstance(video, UploadFile):
        raise ApiError(400, "no file field named 'video' in the form")
    unknown = sorted(set(form.keys()) - {"video", "explain", *PARAMS})
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0]!r}; the fields are video, {', '.join(PARAMS)}, explain")
    params = {}
    for key, (kind, lo, hi) in PARAMS.items():
        raw = form.get(key)
        if raw is None:
            continue
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"{key} must be a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ApiError(400, f"{key} must be between {lo} and {hi}, got {raw}")
        params[key] = value
    raw = form.get("explain")
    if raw is not None:
        if str(raw).strip().lower() not in FLAGS:
            raise ApiError(400, f"explain must be true or false, got {raw!r}")
        params["explain"] = FLAGS[str(raw).strip().lower()]
    with tmp.open("wb") as out:
        await video.seek(0)
        while block := await video.read(1 << 20):
            await run_in_threadpool(out.write, block)  # disk writes off the event loop
    await video.close()
    if tmp.stat().st_size == 0:
        tmp.unlink()
        raise ApiError(415, f"{_display(video.filename)}: the upload is empty (0 bytes)")
    return _display(video.filename), params, tmp


def _display(name: str | None) -> str:
    """The client's file name, for display only: the last path part, printable, at most 120 chars."""
    base = (name or "video").replace("\\", "/").split("/")[-1]
    return "".join(c for c in base if c.isprintable())[:120] or "video"


def _over_limit(info: dict[str, Any], config: ServeConfig) -> str | None:
    """Which limit a probed upload is over (duration, frame size, frame rate), named with its option."""
    fps, frames = float(info.get("fps") or 0.0), int(info.get("frames") or 0)
    w, h = int(info.get("width") or 0), int(info.get("height") or 0)
    long_side, short_side = max(config.max_frame), min(config.max_frame)
    if fps > config.max_fps:
        return f"{fps:g} frames per second is over the limit of {config.max_fps:g} (--max-fps)"
    if max(w, h) > long_side or min(w, h) > short_side:
        return f"frames of {w}x{h} are over the limit of {long_side}x{short_side} (--max-frame)"
    if fps > 0 and frames / fps > config.max_duration:
        return f"{frames / fps:.1f} s of video is over the limit of {config.max_duration:g} s (--max-duration)"
    return None


def _ray_factory(setup: WorkerSetup, store: JobStore, disk: DataDir, config: ServeConfig):
    """Ray actors for the pool, Ray started (or joined) when the first one is made."""
    made = {}

    def make(name: str):
        if "make" not in made:
            from dfer.serve.ray_engine import ray_workers  # Ray is imported only by a service that uses it

            made["make"] = ray_workers(setup, store, disk, config.ray or RayOptions(), config.shared_dir is not None)
        return made["make"](name)

    return make


def _check_free_space(disk: DataDir, min_free: int) -> None:
    free = disk.free_bytes()
    if free < min_free:
        raise ApiError(507, f"the server has {human_bytes(free)} of free disk space, under its minimum of "
                            f"{human_bytes(min_free)} (--min-free); try again later", headers={"Retry-After": "60"})


def _housekeeping(store: JobStore, disk: DataDir, config: ServeConfig, log, *, at_start: bool) -> None:
    """Expire finished jobs past --retention, then remove files no job owns (see DataDir.sweep)."""
    if config.retention > 0:
        expired = disk.expire(store.expired(time.time() - config.retention), store.delete)
        if expired:
            log(f"removed {len(expired)} job(s) older than the retention of {config.retention / 86400:g} days")
    statuses = {j.id: j.status for j in store.list(limit=1 << 30)}
    gone = disk.sweep(statuses, keep_uploads=config.keep_uploads, at_start=at_start)
    if gone:
        log(f"removed {len(gone)} orphaned file(s): {', '.join(gone[:5])}" + (" ..." if len(gone) > 5 else ""))
