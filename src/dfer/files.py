"""Small file helpers every module shares: atomic writes, JSON without NaN, digests.

Atomic writes go to a temporary file in the target folder, then `os.replace` it into place
(atomic on POSIX), so a killed job never leaves a half-written file under the final name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)  # read once: os.umask can only be read by setting it
def default_file_mode() -> int:
    """0o666 less the process umask: what open() would give; mkstemp's 0o600 would hide outputs from other users."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(x: Any) -> Any:
    """NaN -> None (JSON null) through dicts, lists and tuples; everything else unchanged."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


CACHE_ENV = "DFER_CACHE_DIR"


def cache_root() -> Path:
    """dfer's cache folder (converted models, downloaded checkpoints): $DFER_CACHE_DIR or ~/.cache/dfer."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dfer"
