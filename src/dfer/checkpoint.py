"""dfer checkpoints: everything needed to rebuild and run a trained model, from the file alone.

A checkpoint file is a plain dict of tensors, numbers, strings, lists and dicts, read back with
`torch.load(weights_only=True)`: a file carrying pickled objects (code) is refused, never run. In dfer it
is a `Checkpoint` record (one reader, `load_checkpoint`; one writer, `save_checkpoint`).

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
from dataclasses import dataclass, field
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


@dataclass
class StoredModel:
    """The network in a checkpoint: its registry name, its ModelConfig as a dict, and its weights."""

    name: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict({"name": self.name, **self.config})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "state_dict": self.state_dict}


@dataclass
class Checkpoint:
    """A dfer checkpoint as a record: what `load_checkpoint` returns and `save_checkpoint` writes. The file
    is the dict of `to_dict()`, in the format and key order of format version 1 (files written before this
    record existed load unchanged; keys this dfer does not know are kept in `extra` and written back).

    split: the training run's split record (dataset, fold, cache, sha256, synthetic, ...); metrics: the
    selected epoch's; calibration: the fitted temperature and its figures (best.pt, once finished);
    state: what `--resume` needs (last.pt only)."""

    model: StoredModel
    class_names: list[str]
    preprocess: Preprocess
    train_config: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.split.get("synthetic", False))

    def to_dict(self) -> dict[str, Any]:
        out = {"format": FORMAT, "format_version": self.format_version, "model": self.model.to_dict(),
               "class_names": list(self.class_names), "preprocess": self.preprocess.to_dict(),
               "train_config": self.train_config, "split": self.split, "metrics": self.metrics,
               "versions": self.versions}
        if self.state is not None:
            out["state"] = self.state
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "checkpoint") -> Checkpoint:
        """A checkpoint's dict (validated: CheckpointError naming `where` for a damaged one)."""
        for key in ("model", "class_names", "preprocess"):
            if key not in d:
                raise CheckpointError(f"{where}: damaged dfer checkpoint, no {key!r} entry")
        m = d["model"]
        try:
            model = StoredModel(str(m.get("name", "dfer_r2plus1d_18")), dict(m["config"]), m["state_dict"])
            pre = Preprocess.from_dict(d["preprocess"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{where}: damaged dfer checkpoint ({exc.__class__.__name__}: {exc})") from None
        known = {"format", "format_version", "model", "class_names", "preprocess", "train_config", "split", "metrics",
                 "versions", "state", "calibration"}
        return cls(model, list(d["class_names"]), pre, d.get("train_config") or {}, d.get("split") or {},
                   d.get("metrics") or {}, d.get("versions") or {}, d.get("state"), d.get("calibration"),
                   int(d.get("format_version", FORMAT_VERSION)), {k: v for k, v in d.items() if k not in known})


def make_checkpoint(
    *,
    model: torch.nn.Module,
    class_names: list[str],
    preprocess: Preprocess,
    train_config: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> Checkpoint:
    config = model.config.to_dict()
    return Checkpoint(StoredModel(config["name"], config, _cpu(model.state_dict())), list(class_names), preprocess,
                      train_config or {}, split or {}, metrics or {}, versions(), state)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Atomic: written to a temporary file, then renamed into place."""
    buf = io.BytesIO()
    torch.save(ckpt.to_dict(), buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and validate a dfer checkpoint (a file, or a URL: see dfer.remote); `CheckpointError` naming
    the file otherwise."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
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
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        what = f"a dict with keys {sorted(raw)[:6]}" if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(f"{path}: not a dfer checkpoint (it holds {what}); train one with `dfer train`")
    if int(raw.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {raw['format_version']} is newer than this dfer reads ({FORMAT_VERSION}); upgrade dfer"
        )
    return Checkpoint.from_dict(raw, str(path))


def model_from_checkpoint(ckpt: Checkpoint | str | Path, map_location: str = "cpu"):
    """Rebuild the network with its trained weights (eval mode); returns (model, Checkpoint)."""
    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt, map_location)
    try:
        model = build_from_config(ckpt.model.model_config())
        model.load_state_dict(ckpt.model.state_dict, strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"damaged dfer checkpoint: the model does not rebuild ({str(exc)[:300]})") from None
    return model.eval(), ckpt
