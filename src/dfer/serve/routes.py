"""The service's routes (a FastAPI router); each takes the app's `Service` as a dependency."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from dfer.serve.api_schema import (
    ARTIFACTS,
    UPLOAD_SCHEMA,
    Deleted,
    Health,
    JobList,
    JobView,
    LiveInfo,
    LiveTicket,
    ModelView,
    Queued,
    errors,
)
from dfer.serve.disk import ArtifactMissing
from dfer.serve.jobs import Job, JobStatus
from dfer.serve.live_session import TICKET_TTL_S
from dfer.serve.params import QueuedParams
from dfer.serve.probe import Limits, OverLimit, ProbeError, probe_upload
from dfer.serve.service import Service, service
from dfer.serve.upload import ApiError, expected_size, receive

# Documents the bearer token in the OpenAPI schema; the security middleware enforces it on every route.
auth = HTTPBearer(auto_error=False)
Svc = Annotated[Service, Depends(service)]
router = APIRouter()
api = APIRouter(dependencies=[Depends(auth)])


def job_or_404(job_id: str, svc: Annotated[Service, Depends(service)]) -> Job:
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise ApiError(404, f"no job {job_id!r}") from None
    job = svc.store.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id!r}")
    return job


@router.get("/healthz", response_model=Health, responses={503: {"model": Health, "description": "no worker alive"}})
def healthz(request: Request, svc: Svc) -> JSONResponse:
    """200 while a worker process is alive, 503 when none is. Without the token only that status (no job
    ids, pids or memory: a probe or load balancer needs nothing more); with it, each worker's state."""
    states = svc.pool.states() if svc.start_workers else []
    alive = any(w["alive"] for w in states) or not svc.start_workers
    body: dict[str, Any] = {"status": "ok" if alive else "no worker alive"}
    if svc.policy.bearer_ok(request):  # the token, or a server without one (loopback only, every route open)
        body |= {"workers": states, "queued": svc.store.count(JobStatus.QUEUED),
                 "running": svc.store.count(JobStatus.RUNNING)}
    return JSONResponse(body, status_code=200 if alive else 503)


@api.get("/metrics", response_class=PlainTextResponse, responses={
    200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
    **errors(400, 401)})
def prometheus(svc: Svc) -> Response:
    """Prometheus text format: jobs by status, queue depth, job seconds, worker restarts, bytes, latency."""
    return Response(svc.metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")


@api.get("/v1/model", response_model=ModelView, responses=errors(400, 401, 503))
def model_info(svc: Svc) -> ModelView:
    """The model as a worker loaded it: class names, clip, colours, runtime and precision (no server paths)."""
    description = svc.pool.description or svc.live.model_description()
    if description is None:
        raise ApiError(503, "the model is still loading in the workers", headers={"Retry-After": "5"})
    return ModelView(**description)


@api.post("/v1/jobs", status_code=202, openapi_extra=UPLOAD_SCHEMA, response_model=Queued, responses={
    202: {"description": "queued"}, **errors(400, 401, 403, 408, 409, 413, 415, 503, 507)})
async def submit(request: Request, svc: Svc) -> Queued:
    """Stream the upload into incoming/ once (disk space reserved first), probe it in a bounded process,
    move it under uploads/ and write its row only while the queue has room (one transaction). Whatever
    fails on the way, nothing is left behind (`finally`)."""
    config = svc.config
    if svc.live.mode == "camera":
        raise ApiError(409, "this server shows a camera (dfer live) and takes no uploads; run dfer serve for that")
    if svc.store.count(JobStatus.QUEUED) >= config.max_queue:  # cheap early answer; the row's insert decides
        raise _queue_full(config.max_queue)
    max_bytes = int(config.max_upload_mb * 2**20)
    ticket = svc.uploads.reserve(expected_size(request, max_bytes))  # 507 before a byte is read
    job_id = str(uuid.uuid4())
    part, upload, created = svc.disk.incoming(job_id), svc.disk.upload(job_id), False
    try:
        filename, asked = await receive(request, part, max_bytes, config.body_timeout, ticket)
        if asked.explain and config.explain_checkpoint is None:
            raise ApiError(400, "explain=true needs the server to run a dfer checkpoint (.pt), not an exported model")
        info = await _probe(part, filename, svc)
        frames = int(info["frames"])
        params = QueuedParams(**asked.model_dump(exclude_unset=True), num_frames=frames,
                              duration_s=round(frames / float(info["fps"]), 3) if info.get("fps") else 0.0)
        size = ticket.written
        await run_in_threadpool(part.replace, upload)  # a server-made name; the sweep spares young uploads
        created = await run_in_threadpool(svc.store.create_if_room, job_id, params, filename, config.max_queue) is not None
        if not created:
            raise _queue_full(config.max_queue)
    finally:
        svc.uploads.release(ticket)
        if not created:
            await run_in_threadpool(_remove, part, upload)
    svc.metrics.bytes_uploaded.inc(size)
    svc.metrics.job(job_id, JobStatus.QUEUED)
    return Queued(id=job_id, status=JobStatus.QUEUED)


async def _probe(part: Path, filename: str, svc: Service) -> dict[str, Any]:
    """The probe's facts about the upload; 415 (not a video we take) or 413 (over a limit) naming the file."""
    config = svc.config
    limits = Limits(config.max_frame, config.max_fps, config.max_duration)
    try:  # in a separate, bounded process with a deadline: the event loop never waits on FFmpeg
        return await probe_upload(part, config.probe_command, config.probe_timeout, limits,
                                  memory=config.probe_memory, slots=svc.probe_slots)
    except OverLimit as exc:
        raise ApiError(413, f"{filename}: {exc}") from None
    except ProbeError as exc:  # the probe's reason is a whole sentence ("not a readable video (...)", ...)
        raise ApiError(415, f"{filename}: {exc}") from None


def _queue_full(max_queue: int) -> ApiError:
    return ApiError(503, f"the queue is full ({max_queue} jobs waiting); try again later", headers={"Retry-After": "30"})


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@api.get("/v1/jobs", response_model=JobList, response_model_exclude_none=True, responses=errors(400, 401))
def list_jobs(svc: Svc, limit: int = 100) -> JobList:
    return JobList(jobs=[JobView.of(j) for j in svc.store.list(max(1, min(limit, 1000)))])


@api.get("/v1/jobs/{job_id}", response_model=JobView, response_model_exclude_none=True,
         responses={200: {"description": "the job"}, **errors(400, 401, 404)})
def get_job(job: Annotated[Job, Depends(job_or_404)], svc: Svc) -> JobView:
    if job.status is not JobStatus.DONE:
        return JobView.of(job)
    try:
        summary = json.loads(svc.disk.read_artifact(job.id, "summary.json"))
    except ArtifactMissing:
        raise ApiError(404, f"job {job.id} is done but its summary.json is missing") from None
    artifacts = [n for n in ARTIFACTS if svc.disk.has_artifact(job.id, n)]
    return JobView.of(job, summary=summary, artifacts=artifacts,
                      artifact_urls={n: svc.policy.signed_url(job.id, n) for n in artifacts})


@api.api_route("/v1/jobs/{job_id}/{name}", methods=["GET", "HEAD"], response_class=FileResponse, responses={
    200: {"description": "the artifact (HTTP range requests work; HEAD answers the same headers, no body)",
          "content": {t: {} for t in sorted(set(ARTIFACTS.values()))}}, **errors(400, 401, 403, 404)})
def artifact(svc: Svc, job_id: str, name: str, expires: str = "", sig: str = ""):
    # `expires` and `sig` (a signed link from artifact_urls) are verified by the security middleware,
    # before any route runs (dfer.serve.security.Policy.link_refusal); they are listed here for the schema.
    job = job_or_404(job_id, svc)
    if name not in ARTIFACTS:
        raise ApiError(404, f"no artifact {name!r}; jobs have {', '.join(ARTIFACTS)}")
    missing = ApiError(404, f"job {job_id} has no {name} (status {job.status})")
    if job.status is not JobStatus.DONE:
        raise missing
    try:  # only fixed names under a server-made id, never through a symlink
        fd = svc.disk.open_artifact(job.id, name)
    except ArtifactMissing:
        raise missing from None
    return DescriptorResponse(fd, media_type=ARTIFACTS[name], filename=name, content_disposition_type="inline")


class DescriptorResponse(FileResponse):
    """A FileResponse (ranges, ETag) over a file already opened safely: Linux's /proc/self/fd/N names the
    opened file itself, whatever happens to its path meanwhile. The descriptor is closed when sent."""

    def __init__(self, fd: int, **kw: Any) -> None:
        self._fd = fd
        super().__init__(f"/proc/self/fd/{fd}", stat_result=os.fstat(fd), **kw)

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            os.close(self._fd)


@api.delete("/v1/jobs/{job_id}", responses={
    200: {"model": Deleted, "description": "deleted with its files: GET /v1/jobs/{id} answers 404 from now on"},
    202: {"model": Queued, "description": "the job was running: it is now `cancelled` (Accepted: the deletion is not complete). "
                         "Its worker stops and removes its outputs; the job's row stays, and GET /v1/jobs/{id} "
                         "answers it with status `cancelled`, until --retention removes it or a second DELETE "
                         "does (200)"},
    **errors(400, 401, 403, 404)})
def delete_job(job: Annotated[Job, Depends(job_or_404)], svc: Svc) -> JSONResponse:
    before = svc.store.cancel(job.id)  # atomic: a worker claiming it meanwhile cannot slip in between
    if before is JobStatus.RUNNING:  # the worker sees it at its next progress write and removes its outputs
        return JSONResponse({"id": job.id, "status": JobStatus.CANCELLED}, status_code=202)
    svc.store.delete(job.id)
    svc.disk.remove_all(job.id)
    return JSONResponse({"id": job.id, "deleted": True})


@api.post("/v1/live", response_model=LiveTicket, responses=errors(400, 401, 403, 409, 503))
def live_ticket(svc: Svc) -> LiveTicket:
    """A ticket for one live WebSocket (/v1/live/ws), good for 30 s: a browser cannot send the token on a
    WebSocket, so the token (and the same-origin rule for POSTs) is checked here instead."""
    if svc.live.mode == "off":
        raise ApiError(409, "live sessions are off on this server (--live-sessions 0)")
    if svc.live.mode == "browser" and svc.live.sessions >= svc.live.max_sessions:
        raise ApiError(503, f"the server has {svc.live.max_sessions} live session(s) open, its limit (--live-sessions); "
                            "try again when one ends", headers={"Retry-After": "10"})
    return LiveTicket(ticket=svc.live.tickets.issue(), expires_in=TICKET_TTL_S, **svc.live.info())


@api.get("/v1/live", response_model=LiveInfo, responses=errors(400, 401))
def live_info(svc: Svc) -> LiveInfo:
    """The live mode (off, browser: the page's camera, camera: a source the server reads), sessions and limits."""
    return LiveInfo(**svc.live.info())


@router.websocket("/v1/live/ws")
async def live_socket(ws: WebSocket) -> None:
    # The HTTP middleware does not see WebSockets: LiveHub.serve checks Host and Origin, then the ticket.
    await ws.app.state.service.live.serve(ws)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(svc: Svc) -> HTMLResponse:
    return HTMLResponse(svc.page_html)
