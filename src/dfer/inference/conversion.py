"""The per-checkpoint cache of converted models, and the int8 model a checkpoint may have.

A dfer checkpoint (.pt) is converted once per runtime (OpenVINO IR, ONNX) into a cache folder keyed
by the checkpoint's SHA-256, so a renamed or copied checkpoint reuses it and a retrained one (new
bytes) gets its own. The conversion is `dfer export`'s own code (dfer.inference.export), and it
measures its agreement with PyTorch float32 on the check clips; dfer.acceptance.conversion_passes says
whether a converted model may be used where float32 is expected.

The cache folder is `$DFER_CACHE_DIR` or `~/.cache/dfer`, under `converted/<digest[:16]>/`.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

from dfer.errors import CheckpointError, ConfigError
from dfer.files import CACHE_ENV, cache_root, file_digest
from dfer.inference.metadata import read_metadata
from dfer.options import INT8_SUFFIX
from dfer.progress import stage

_LOCK = threading.Lock()  # one conversion at a time within a process


def checkpoint_digest(checkpoint: str | Path) -> str:
    """SHA-256 of a checkpoint, read once per file version: opening a model with `auto` needs it for the
    int8 check and the conversion cache (each read of a full-size checkpoint is 130 MB)."""
    st = os.stat(checkpoint)
    return _digest(str(Path(checkpoint).resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return file_digest(path)


def converted_dir(checkpoint: str | Path) -> Path:
    return cache_root() / "converted" / checkpoint_digest(checkpoint)[:16]


def ensure_converted(checkpoint: str | Path, fmt: str) -> Path:
    """The checkpoint as `fmt` ("openvino" | "onnx") in the cache, converted now if it is not there.

    The IR's .xml and the .onnx are renamed into place last, so a killed conversion leaves nothing
    that looks done.
    """
    if fmt not in ("openvino", "onnx"):
        raise ConfigError(f"no conversion to {fmt!r}")
    path = converted_dir(checkpoint) / ("model.xml" if fmt == "openvino" else "model.onnx")
    with _LOCK:
        if not path.is_file():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CheckpointError(f"cannot create the model cache {path.parent} ({exc.strerror}); "
                                      f"set {CACHE_ENV} to a writable folder") from None
            from dfer.inference.export import export_model  # torch: only when a conversion is due (a cold cache)
            with stage(f"converting the model for {'OpenVINO' if fmt == 'openvino' else 'ONNX Runtime'} "
                       "(the first run only; cached)"):
                export_model(checkpoint, path, format=fmt)
    return path


def verified_int8(checkpoint: Path, *, unresolved_ok: bool = False) -> tuple[Path | None, str]:
    """The int8 model of this checkpoint that passed its acceptance rule, beside it or in the conversion
    cache, and why (or why not). `unresolved_ok` (the user asked for int8 by name): also one whose
    validation part was too small to judge it (dfer.acceptance: unresolved), said so."""
    digest = checkpoint_digest(checkpoint)
    for cand in (checkpoint.with_name(checkpoint.stem + INT8_SUFFIX), converted_dir(checkpoint) / "model-int8.xml"):
        if not cand.is_file():
            continue
        try:
            meta = read_metadata(cand)
        except (CheckpointError, ImportError):
            continue
        if meta.source_sha256 != digest:
            continue
        if meta.accepted:
            return cand, (f"verified int8 model of this checkpoint ({cand.name}; accepted by the "
                          f"{meta.acceptance.get('rule')} rule)")
        if unresolved_ok and (meta.acceptance or {}).get("verdict") == "unresolved":
            return cand, (f"int8 model of this checkpoint ({cand.name}), asked for by name: NOT verified "
                          f"({meta.acceptance.get('reason', 'too few clips to judge it')})")
    return None, "no verified int8 model of this checkpoint (dfer train makes one; or dfer export --quantize int8)"
