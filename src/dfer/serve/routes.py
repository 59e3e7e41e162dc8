"""The service's routes (a FastAPI router); each takes the app's `Service` as a dependency."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from dfer.serve.api_schema import ARTIFACTS, JOB_SCHEMA, UPLOAD_SCHEMA, errors
from dfer.serve.jobs import Job
from dfer.serve.probe import ProbeError, probe_upload
from dfer.serve.service import Service, service
from dfer.serve.upload import ApiError, check_free_space, over_limit, receive

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


@router.get("/healthz")
def healthz(svc: Svc) -> JSONResponse:
    """200 while a worker process is alive, 503 when none is; each worker's state either way (no token)."""
    states = svc.pool.states() if svc.start_workers else []
    alive = any(w["alive"] for w in states) or not svc.start_workers
    body = {"status": "ok" if alive else "no worker alive", "workers": states,
            "queued": svc.store.count("queued"), "running": svc.store.count("running")}
    return JSONResponse(body, status_code=200 if alive else 503)


@api.get("/metrics", response_class=PlainTextResponse, responses={
    200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
    **errors(400, 401)})
def prometheus(svc: Svc) -> Response:
    """Prometheus text format: jobs by status, queue depth, job seconds, worker restarts, bytes, latency."""
    return Response(svc.metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")


@api.get("/v1/model", responses=errors(400, 401, 503))
def model_info(svc: Svc) -> dict[str, Any]:
    """The model as a worker loaded it: class names, clip, runtime and precision (no server paths)."""
    if svc.pool.description is None:
        raise ApiError(503, "the model is still loading in the workers", headers={"Retry-After": "5"})
    return svc.pool.description


@api.post("/v1/jobs", status_code=202, openapi_extra=UPLOAD_SCHEMA, responses={
    202: {"description": "queued", "content": {"application/json": {"schema": JOB_SCHEMA}}},
    **errors(400, 401, 403, 413, 415, 503, 507)})
async def submit(request: Request, svc: Svc) -> dict[str, Any]:
    config = svc.config
    check_free_space(svc.disk, config.min_free)
    if svc.store.count("queued") >= config.max_queue:
        raise ApiError(503, f"the queue is full ({config.max_queue} jobs waiting); try again later",
                       headers={"Retry-After": "30"})
    job_id = str(uuid.uuid4())
    filename, params, tmp = await receive(request, svc.disk.incoming(job_id), int(config.max_upload_mb * 2**20))
    try:
        if params.get("explain") and config.explain_checkpoint is None:
            raise ApiError(400, "explain=true needs the server to run a dfer checkpoint (.pt), not an exported model")
        try:  # in a separate process with a deadline: the event loop never waits on FFmpeg
            info = await probe_upload(tmp, config.probe_command, config.probe_timeout)
        except ProbeError as exc:
            raise ApiError(415, f"{filename}: not a readable video ({exc})") from None
        limit = over_limit(info, config)
        if limit:
            raise ApiError(413, f"{filename}: {limit}")
        check_free_space(svc.disk, config.min_free)  # this upload may have taken the last of it
    except ApiError:
        await run_in_threadpool(tmp.unlink, True)
        raise
    params["num_frames"] = int(info["frames"])
    params["duration_s"] = round(int(info["frames"]) / float(info["fps"]), 3) if info.get("fps") else 0.0
    size = tmp.stat().st_size
    await run_in_threadpool(tmp.replace, svc.disk.upload(job_id))  # a server-made name, then recorded
    await run_in_threadpool(svc.store.create, job_id, params, filename)
    svc.metrics.bytes_uploaded.inc(size)
    svc.metrics.job(job_id, "queued")
    return {"id": job_id, "status": "queued"}


@api.get("/v1/jobs", responses=errors(400, 401))
def list_jobs(svc: Svc, limit: int = 100) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in svc.store.list(max(1, min(limit, 1000)))]}


@api.get("/v1/jobs/{job_id}", responses={
    200: {"description": "the job", "content": {"application/json": {"schema": JOB_SCHEMA}}}, **errors(400, 401, 404)})
def get_job(job: Annotated[Job, Depends(job_or_404)], svc: Svc) -> dict[str, Any]:
    out = job.to_dict()
    if job.status == "done":
        folder = svc.disk.result(job.id)
        out["summary"] = json.loads((folder / "summary.json").read_text())
        out["artifacts"] = [n for n in ARTIFACTS if (folder / n).is_file()]
        out["artifact_urls"] = {n: svc.policy.signed_url(job.id, n) for n in out["artifacts"]}
    return out


@api.get("/v1/jobs/{job_id}/{name}", response_class=FileResponse, responses={
    200: {"description": "the artifact (HTTP range requests work)",
          "content": {t: {} for t in sorted(set(ARTIFACTS.values()))}}, **errors(400, 401, 403, 404)})
def artifact(svc: Svc, job_id: str, name: str, expires: str = "", sig: str = ""):
    if sig and not svc.policy.link_valid(job_id, name, expires, sig):
        raise ApiError(403, "this link has expired or was made for another artifact; get a fresh one from "
                            "GET /v1/jobs/{id} (artifact_urls)")
    job = job_or_404(job_id, svc)
    if name not in ARTIFACTS:
        raise ApiError(404, f"no artifact {name!r}; jobs have {', '.join(ARTIFACTS)}")
    path = svc.disk.result(job.id) / name  # only fixed names under a server-made id
    if job.status != "done" or not path.is_file():
        raise ApiError(404, f"job {job_id} has no {name} (status {job.status})")
    return FileResponse(path, media_type=ARTIFACTS[name], filename=name, content_disposition_type="inline")


@api.delete("/v1/jobs/{job_id}", responses={
    200: {"description": "deleted with its files"}, 202: {"description": "running: cancelled, its worker stops"},
    **errors(400, 401, 403, 404)})
def delete_job(job: Annotated[Job, Depends(job_or_404)], svc: Svc) -> JSONResponse:
    before = svc.store.cancel(job.id)  # atomic: a worker claiming it meanwhile cannot slip in between
    if before == "running":  # the worker sees it at its next progress write and removes its outputs
        return JSONResponse({"id": job.id, "status": "cancelled"}, status_code=202)
    svc.store.delete(job.id)
    svc.disk.remove_all(job.id)
    return JSONResponse({"id": job.id, "deleted": True})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(svc: Svc) -> HTMLResponse:
    return HTMLResponse(svc.page_html)
