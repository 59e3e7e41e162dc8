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
jobs run in worker processes (dfer.serve.pool). The parts: dfer.serve.service (state and start),
dfer.serve.routes (the routes), dfer.serve.upload (receiving uploads), dfer.serve.api_schema (the
OpenAPI document's shapes).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dfer.serve.api_schema import openapi_document
from dfer.serve.config import ServeConfig
from dfer.serve.routes import api, router
from dfer.serve.security import install
from dfer.serve.service import Service
from dfer.serve.spec import ModelSpec
from dfer.serve.upload import ApiError, UploadAborted


def create_app(model: ModelSpec, config: ServeConfig, *, start_workers: bool = True, log=print) -> FastAPI:
    """The FastAPI app over `config.data_dir`; worker processes that open `model` start with the app
    and stop with it (`start_workers=False`: none, jobs only queue)."""
    svc = Service.build(model, config, start_workers=start_workers, log=log)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(svc.startup)
        yield
        await run_in_threadpool(svc.shutdown)

    # No /docs or /redoc: their pages load scripts from a CDN, which the Content-Security-Policy forbids;
    # /openapi.json (token-protected like the API) works with any OpenAPI viewer or client generator.
    app = FastAPI(title="dfer", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Dynamic facial expression recognition on uploaded videos.")
    install(app, svc.policy, log, observe=svc.metrics.request)
    app.openapi = openapi_document(app, token=bool(config.token))
    app.state.service = svc
    app.state.store, app.state.pool, app.state.config, app.state.startup = svc.store, svc.pool, config, svc.startup
    _error_handlers(app, log)
    app.include_router(router)
    app.include_router(api)
    return app


def _error_handlers(app: FastAPI, log) -> None:
    """Every error as JSON {"error": ...}; 405 keeps its Allow header; validation errors are 400s; an upload
    the client abandoned is one line in the log (a stranger must not be able to flood it with tracebacks)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(UploadAborted)
    async def _aborted(request: Request, exc: UploadAborted):
        log(f"upload aborted: {exc}; nothing kept")
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):  # 404, 405 (with its Allow header)...
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of every route of this path, not only the first route's
            path = request.url.path
            methods = {m for r in (*router.routes, *api.routes)
                       if isinstance(r, APIRoute) and r.path_regex.match(path) for m in r.methods}
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"bad request: {where} {first.get('msg', '')}".strip()}, status_code=400)
