"""`dfer serve`: an HTTP service (FastAPI + uvicorn) with durable jobs in SQLite and a web page.

Names are imported when first used, so `python -m dfer.serve.probe` (the upload probe) starts
without FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"ServeConfig": "dfer.serve.config", "create_app": "dfer.serve.app", "Job": "dfer.serve.jobs",
          "JobStore": "dfer.serve.jobs", "serve": "dfer.serve.server", "ModelSpec": "dfer.serve.spec",
          "PoolLimits": "dfer.serve.pool", "WorkerPool": "dfer.serve.pool"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'dfer.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
