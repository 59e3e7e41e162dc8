"""Classification metrics for expression recognition.

Definitions (rows of the confusion matrix are true classes, columns predictions):
- WAR (weighted average recall) = accuracy = trace / total.
- per-class recall r_k = C[k, k] / sum_j C[k, j].
- UAR (unweighted average recall) = mean of r_k over classes PRESENT in the targets.
- macro-F1 = mean of F1_k = 2 C[k,k] / (row_k + col_k) over classes present in the targets.

A class absent from the targets of a split has recall and F1 NaN (undefined, not 0), is left
out of UAR and macro-F1, and is listed in `absent_classes`. Predictions of an absent class
still count against WAR and precision of other classes. Fold aggregation uses nan-aware means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class ClassificationReport:
    war: float
    uar: float
    macro_f1: float
    per_class_recall: list[float]
    per_class_f1: list[float]
    support: list[int]
    confusion: list[list[int]]  # counts, rows = true class
    absent_classes: list[int] = field(default_factory=list)
    class_names: list[str] | None = None

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Row-normalised confusion matrix (rows of absent classes are NaN)."""
        return normalize_confusion(np.asarray(self.confusion))

    def to_dict(self) -> dict[str, Any]:
        return {
            "war": _nan_to_none(self.war),
            "uar": _nan_to_none(self.uar),
            "macro_f1": _nan_to_none(self.macro_f1),
            "per_class_recall": _nan_to_none(self.per_class_recall),
            "per_class_f1": _nan_to_none(self.per_class_f1),
            "support": self.support,
            "confusion": self.confusion,
            "confusion_normalized": _nan_to_none(self.confusion_normalized.tolist()),
            "absent_classes": self.absent_classes,
            "class_names": self.class_names,
            "num_samples": int(sum(self.support)),
        }


def _nan_to_none(x):
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and np.isnan(x) else x


def confusion_matrix(preds, targets, num_classes: int) -> np.ndarray:
    """(K, K) integer counts, rows = targets, columns = predictions."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix  # lazy: 2 s of imports

    preds = torch.as_tensor(np.asarray(preds)).long().flatten()
    targets = torch.as_tensor(np.asarray(targets)).long().flatten()
    if preds.shape != targets.shape:
        raise ValueError(f"preds ({preds.numel()}) and targets ({targets.numel()}) differ in length")
    if preds.numel() == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return multiclass_confusion_matrix(preds, targets, num_classes=num_classes).numpy().astype(np.int64)


def normalize_confusion(cm: np.ndarray) -> np.ndarray:
    rows = cm.sum(axis=1, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, cm / np.where(rows > 0, rows, 1), np.nan)


def report_from_confusion(cm: np.ndarray, class_names: Sequence[str] | None = None) -> ClassificationReport:
    cm = np.asarray(cm, dtype=np.int64)
    support = cm.sum(axis=1)  # (K,)
    predicted = cm.sum(axis=0)  # (K,)
    tp = np.diag(cm).astype(float)
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(present, tp / np.maximum(support, 1), np.nan)
        f1 = np.where(present, 2 * tp / np.maximum(support + predicted, 1), np.nan)
    total = support.sum()
    war = float(tp.sum() / total) if total else float("nan")
    uar = float(np.nanmean(recall)) if present.any() else float("nan")
    mf1 = float(np.nanmean(f1)) if present.any() else float("nan")
    return ClassificationReport(
        war=war,
        uar=uar,
        macro_f1=mf1,
        per_class_recall=[float(v) for v in recall],
        per_class_f1=[float(v) for v in f1],
        support=[int(v) for v in support],
        confusion=cm.tolist(),
        absent_classes=[int(k) for k in np.flatnonzero(~present)],
        class_names=list(class_names) if class_names is not None else None,
    )


def classification_report(
    preds, targets, num_classes: int, class_names: Sequence[str] | None = None
) -> ClassificationReport:
    """WAR, UAR, macro-F1, per-class recall/F1 and the confusion matrix of one split."""
    return report_from_confusion(confusion_matrix(preds, targets, num_classes), class_names)


def aggregate_folds(reports: Sequence[ClassificationReport | dict]) -> dict[str, Any]:
    """Mean and std (sample, ddof=1; 0 for one fold) of the scalar and per-class metrics over folds.

    Also returns the pooled confusion matrix (sum of counts) and its report.
    """
    dicts = [r.to_dict() if isinstance(r, ClassificationReport) else r for r in reports]
    if not dicts:
        raise ValueError("no fold reports to aggregate")
    out: dict[str, Any] = {"num_folds": len(dicts)}
    for key in ("war", "uar", "macro_f1"):
        vals = np.array([np.nan if d[key] is None else d[key] for d in dicts], dtype=float)
        out[key] = {"mean": _nanmean(vals), "std": _nanstd(vals), "folds": vals.tolist()}
    rec = np.array([[np.nan if v is None else v for v in d["per_class_recall"]] for d in dicts], dtype=float)
    out["per_class_recall"] = {
        "mean": [_nanmean(rec[:, k]) for k in range(rec.shape[1])],
        "std": [_nanstd(rec[:, k]) for k in range(rec.shape[1])],
    }
    pooled = np.sum([np.asarray(d["confusion"]) for d in dicts], axis=0)
    out["pooled"] = report_from_confusion(pooled, dicts[0].get("class_names")).to_dict()
    return out


def _nanmean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def _nanstd(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.std(ddof=1)) if v.size > 1 else 0.0 if v.size == 1 else float("nan")
