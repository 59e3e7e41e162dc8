"""dfer checkpoints: everything needed to rebuild and run a trained model, from the file alone.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, read back with
`torch.load(weights_only=True)`: a file carrying pickled objects (code) is refused, never run.

    format, format_version        "dfer-checkpoint", 1
    model: name, config, state_dict
    class_names                   label order of the logits
    preprocess                    num_frames, size, mean, std, face (detector, margin, ...)
    train_config, split, metrics  how it was trained, on which fold, how it scored
    versions                      dfer, torch, torchvision
    state                         (resume only) optimizer, centers, progress, RNG, history
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from dfer import __version__
from dfer.errors import CheckpointError
from dfer.files import atomic_write_bytes
from dfer.models import ModelConfig, build_from_config
from dfer.preprocess import Preprocess
from dfer.remote import resolve_checkpoint

FORMAT = "dfer-checkpoint"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    import torchvision

    return {"dfer": str(__version__), "torch": str(torch.__version__), "torchvision": str(torchvision.__version__)}


def make_checkpoint(
    *,
    model: torch.nn.Module,
    class_names: list[str],
    preprocess: Preprocess,
    train_config: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config = model.config.to_dict()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": config["name"], "config": config, "state_dict": _cpu(model.state_dict())},
        "class_names": list(class_names),
        "preprocess": preprocess.to_dict(),
        "train_config": train_config or {},
        "split": split or {},
        "metrics": metrics or {},
        "versions": versions(),
        **({"state": state} if state is not None else {}),
    }


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> Path:
    """Atomic: written to a temporary file, then renamed into place."""
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a dfer checkpoint (a file, or a URL: see dfer.remote); `CheckpointError` naming
    the file otherwise."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler names the global (class or function) it would not import.
        lines = [ln.strip() for ln in str(exc).splitlines() if "unsupported global" in ln.lower()]
        if not lines:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({str(exc)[:200]})") from None
        first = lines[0]
        raise CheckpointError(
            f"{path}: refused: the file carries pickled Python objects, not only tensors and plain data "
            f"(it could run code when loaded; it was not). Detail: {first[:200]}"
        ) from None
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        what = f"a dict with keys {sorted(ckpt)[:6]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a dfer checkpoint (it holds {what}); train one with `dfer train`")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this dfer reads ({FORMAT_VERSION}); upgrade dfer"
        )
    for key in ("model", "class_names", "preprocess"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: damaged dfer checkpoint, no {key!r} entry")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path, map_location: str = "cpu"):
    """Rebuild the network with its trained weights (eval mode); returns (model, checkpoint dict)."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt, map_location)
    try:
        stored = ckpt["model"]
        config = ModelConfig.from_dict({"name": stored.get("name", "dfer_r2plus1d_18"), **stored["config"]})
        model = build_from_config(config)
        model.load_state_dict(ckpt["model"]["state_dict"], strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"damaged dfer checkpoint: the model does not rebuild ({str(exc)[:300]})") from None
    return model.eval(), ckpt
