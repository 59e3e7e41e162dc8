"""`dfer evaluate`: score a checkpoint on a split of a prepared cache, with its report and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dfer.checkpoint import model_from_checkpoint
from dfer.data.cache import ClipCache
from dfer.data.dataset import FRAME_ORDERS, ClipDataset
from dfer.data.splits import Fold, Splits
from dfer.engine.loop import Predictions, predict_dataset
from dfer.engine.report import plot_confusion, recall_table
from dfer.errors import DatasetError
from dfer.files import atomic_write_json, atomic_write_text
from dfer.formatting import percent
from dfer.options import SPLITS
from dfer.remote import is_remote


def _split_ids(data: str | Path, trained: dict[str, Any], split: str, fold: str | None,
               protocol: str | None) -> tuple[str, str, Fold]:
    """(fold, protocol, Fold): by default the ones the checkpoint was trained on."""
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    fold = str(fold or trained.get("fold") or "1")
    splits = Splits.load(data)
    protocol = protocol or trained.get("protocol") or splits.default
    f = splits.fold(fold, protocol)
    if not f.part(split):
        raise DatasetError(f"{data}: fold {fold} ({protocol}) has no {split} clips")
    return fold, protocol, f


def _write_outputs(out: Path, result: dict[str, Any], preds: Predictions, names: list[str], title: str) -> None:
    rep = result["report"]
    atomic_write_json(out / "metrics.json", result)
    atomic_write_json(out / "predictions.json", {"ids": preds.ids, "labels": preds.labels.tolist(),
                                                 "preds": preds.preds.tolist()})
    plot_confusion(rep["confusion"], names, out / "confusion.png", normalized=False, title=title + ", counts")
    plot_confusion(rep["confusion"], names, out / "confusion_normalized.png", normalized=True,
                   title=title + ", row-normalised")
    note = "" if result["split_matches_training"] else (
        "\n**Note:** this split differs from the one the checkpoint was trained on (another cache or re-made splits).\n")
    table = recall_table([(Path(result["checkpoint"]).name, rep)], names)
    atomic_write_text(out / "report.md", f"# dfer evaluate: {title}\n{note}\n{table}\n\nMacro-F1 "
                      f"{percent(rep['macro_f1'])}; {rep['num_samples']} clips; frames {result['frame_order']}.\n")


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    *,
    split: str = "test",
    fold: str | None = None,
    protocol: str | None = None,
    out: str | Path | None = None,
    frame_order: str = "natural",
    device: str = "auto",
    batch_size: int = 32,
    workers: int = 2,
) -> dict[str, Any]:
    """Score a checkpoint on a split of a prepared cache; writes metrics.json, report.md and confusion PNGs.

    The fold and protocol default to the ones the checkpoint was trained on, so its reported
    numbers are regenerated exactly from the checkpoint and the cache's saved splits.json.
    """
    if frame_order not in FRAME_ORDERS:
        raise DatasetError(f"frame order must be one of {', '.join(FRAME_ORDERS)}, got {frame_order!r}")
    model, ckpt = model_from_checkpoint(checkpoint)
    trained = ckpt.split
    fold, protocol, f = _split_ids(data, trained, split, fold, protocol)
    cache = ClipCache(data)
    names = list(ckpt.class_names)
    if list(cache.meta["class_names"]) != names:
        raise DatasetError(f"{data}: classes {cache.meta['class_names']} differ from the checkpoint's {names}")
    pre = ckpt.preprocess
    ds = ClipDataset(cache, f.part(split), num_frames=pre.num_frames, transform_config=pre.transform_config(),
                     frame_order=frame_order)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(auto if device == "auto" else device)
    preds = predict_dataset(model.to(dev), ds, batch_size=batch_size, workers=workers, device=dev)
    result = {"checkpoint": str(checkpoint), "cache": str(data), "protocol": protocol, "fold": fold, "split": split,
              "frame_order": frame_order, "split_matches_training": trained.get("sha256") == f.digest,
              "report": preds.report(names), "trained_metrics": ckpt.metrics}
    suffix = "" if frame_order == "natural" else f"_{frame_order}"
    # A downloaded checkpoint lives in dfer's cache: its report goes to the working folder instead.
    out = Path(out) if out else (Path(".") if is_remote(checkpoint) else Path(checkpoint).parent) / f"eval_{split}{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    title = f"{Path(checkpoint).name}, fold {fold}, {split}" + (f", frames {frame_order}" if suffix else "")
    _write_outputs(out, result, preds, names, title)
    result["out"] = str(out)
    return result
