"""`dfer serve`: an HTTP service (FastAPI + uvicorn) with durable jobs in SQLite and a web page.

Names are imported when first used, so `python -m dfer.serve.probe` (the upload probe) starts
without FastAPI.
"""

from __future__ import annotations

from dfer.lazy import lazy_names

_WHERE = {"ServeConfig": "dfer.serve.config", "create_app": "dfer.serve.app", "Job": "dfer.serve.jobs",
          "JobStore": "dfer.serve.jobs", "serve": "dfer.serve.server", "ModelSpec": "dfer.serve.spec",
          "PoolLimits": "dfer.serve.pool", "WorkerPool": "dfer.serve.pool"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
