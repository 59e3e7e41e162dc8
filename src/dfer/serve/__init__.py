"""`dfer serve`: an HTTP service (FastAPI + uvicorn) with durable jobs in SQLite and a web page."""

from dfer.serve.app import ServeConfig, create_app
from dfer.serve.jobs import Job, JobStore

__all__ = ["Job", "JobStore", "ServeConfig", "create_app", "serve"]


def serve(*args, **kwargs):
    from dfer.serve.server import serve as _serve

    return _serve(*args, **kwargs)
