"""Scoring a model on a split: logits for every clip, then the metrics of dfer.metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dfer.data.dataset import ClipDataset, make_loader
from dfer.metrics import classification_report


@dataclass
class Predictions:
    ids: list[str]
    labels: np.ndarray  # (N,) int
    logits: np.ndarray  # (N, K) float32

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(1) if len(self.ids) else np.zeros(0, dtype=np.int64)

    def loss(self) -> float:
        if not len(self.ids):
            return float("nan")
        return float(F.cross_entropy(torch.from_numpy(self.logits), torch.from_numpy(self.labels).long()))

    def report(self, class_names: list[str]) -> dict[str, Any]:
        rep = classification_report(self.preds, self.labels, len(class_names), class_names).to_dict()
        rep["loss"] = self.loss()
        return rep


@torch.no_grad()
def predict_dataset(
    model: torch.nn.Module,
    dataset: ClipDataset,
    *,
    batch_size: int = 32,
    workers: int = 0,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
    fabric=None,
    autocast_dtype: torch.dtype | None = None,
) -> Predictions:
    """Logits of every clip of `dataset`, in dataset order.

    With a Lightning `fabric` of several processes, each scores its share and the shares are
    gathered (every process gets the full result).
    """
    rank, world = (fabric.global_rank, fabric.world_size) if fabric is not None else (0, 1)
    loader = make_loader(dataset, batch_size=batch_size, workers=workers, shuffle=False, rank=rank, world_size=world)
    loader.sampler.set_epoch(0)
    index = {r.id: k for k, r in enumerate(dataset.rows)}
    was_training = model.training
    model.eval()
    idx_parts, logit_parts = [], []
    device = torch.device(device) if fabric is None else fabric.device
    try:
        for x, _, ids in loader:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(x).logits
            logit_parts.append(logits.float())
            idx_parts.append(torch.tensor([index[i] for i in ids], device=logits.device))
    finally:
        model.train(was_training)
    k = len(dataset.class_names)
    logits = torch.cat(logit_parts) if logit_parts else torch.zeros(0, k, device=device)
    idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long, device=device)
    if world > 1:
        logits = fabric.all_gather(logits).reshape(-1, k)
        idx = fabric.all_gather(idx).reshape(-1)
    out = np.zeros((len(dataset), k), dtype=np.float32)
    out[idx.cpu().numpy()] = logits.cpu().numpy()  # padded duplicates land on the same row
    labels = np.asarray(dataset.labels, dtype=np.int64)
    return Predictions([r.id for r in dataset.rows], labels, out)


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
    from dfer.checkpoint import Preprocess, model_from_checkpoint
    from dfer.data.cache import ClipCache
    from dfer.files import atomic_write_json, atomic_write_text
    from dfer.data.prepare import load_splits
    from dfer.data.splits import get_fold
    from dfer.data.transforms import ClipTransformConfig
    from dfer.engine.report import plot_confusion, recall_table
    from dfer.engine.trainer import split_digest
    from dfer.errors import DatasetError

    if split not in ("train", "val", "test"):
        raise DatasetError(f"split must be train, val or test, got {split!r}")
    model, ckpt = model_from_checkpoint(checkpoint)
    trained = ckpt.get("split", {})
    fold = str(fold or trained.get("fold") or "1")
    splits = load_splits(data)
    protocol = protocol or trained.get("protocol") or splits["default"]
    f = get_fold(splits, fold, protocol)
    ids = f.get(split, [])
    if not ids:
        raise DatasetError(f"{data}: fold {fold} ({protocol}) has no {split} clips")
    cache = ClipCache(data)
    names = list(ckpt["class_names"])
    if list(cache.meta["class_names"]) != names:
        raise DatasetError(f"{data}: classes {cache.meta['class_names']} differ from the checkpoint's {names}")
    pre = Preprocess.from_dict(ckpt["preprocess"])
    tcfg = ClipTransformConfig(size=pre.size, mean=tuple(pre.mean), std=tuple(pre.std))
    ds = ClipDataset(cache, ids, num_frames=pre.num_frames, transform_config=tcfg, frame_order=frame_order)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    model.to(dev)
    preds = predict_dataset(model, ds, batch_size=batch_size, workers=workers, device=dev)
    rep = preds.report(names)
    same = trained.get("sha256") == split_digest(f)
    result = {"checkpoint": str(checkpoint), "cache": str(data), "protocol": protocol, "fold": fold, "split": split,
              "frame_order": frame_order, "split_matches_training": same, "report": rep,
              "trained_metrics": ckpt.get("metrics", {})}
    out = Path(out) if out else Path(checkpoint).parent / (f"eval_{split}" + ("" if frame_order == "natural" else f"_{frame_order}"))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", result)
    atomic_write_json(out / "predictions.json", ({"ids": preds.ids, "labels": preds.labels.tolist(),
                                                           "preds": preds.preds.tolist()}))
    title = f"{Path(checkpoint).name}, fold {fold}, {split}" + ("" if frame_order == "natural" else f", frames {frame_order}")
    plot_confusion(rep["confusion"], names, out / "confusion.png", normalized=False, title=title + ", counts")
    plot_confusion(rep["confusion"], names, out / "confusion_normalized.png", normalized=True, title=title + ", row-normalised")
    note = "" if same else ("\n**Note:** this split differs from the one the checkpoint was trained on "
                            "(another cache or re-made splits).\n")
    atomic_write_text(out / "report.md", f"# dfer evaluate: {title}\n{note}\n" + recall_table([(Path(checkpoint).name, rep)], names)
                      + f"\n\nMacro-F1 {100 * rep['macro_f1']:.2f}; {len(ids)} clips; frames {frame_order}.\n")
    result["out"] = str(out)
    return result
