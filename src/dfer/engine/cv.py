"""K-fold cross-validation's parts: the folds of a protocol, and their results aggregated (mean/std
over folds, pooled confusion). The whole job, a fold after another, is dfer.runs.run_cv:

    RUN/fold_<k>/     one fold's run folder (see dfer.engine.trainer)
    RUN/metrics.json  per-fold and aggregated test metrics (selected and last checkpoints)
    RUN/report.md, RUN/confusion*.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfer.acceptance import pooled_check
from dfer.data.splits import Splits
from dfer.engine.results import CVResult, FoldLine, FoldResult, FoldsSummary
from dfer.errors import DatasetError
from dfer.metrics import aggregate_folds


def fold_names(data: str | Path, protocol: str | None = None) -> tuple[str, list[str]]:
    splits = Splits.load(data)
    protocol = protocol or splits.default
    if protocol not in splits.protocols:
        raise DatasetError(f"{data}: split protocol {protocol!r} not in splits.json (have {sorted(splits.protocols)})")
    return protocol, [f.name for f in splits.folds(protocol)]


def aggregate(folds: list[FoldResult]) -> CVResult:
    """Mean ± std over folds and the pooled confusion, of the selected and of the last checkpoints."""
    first = folds[0]
    summaries = {}
    for key in ("selected", "last"):
        reports = [getattr(m, key).test for m in folds if getattr(m, key).test]
        if not reports:
            raise DatasetError("no fold has a test part; nothing to aggregate")
        summaries[key] = FoldsSummary.from_dict(aggregate_folds(reports))
    peers = [m.peer_best_on_test for m in folds if m.peer_best_on_test is not None]
    peer_summary = None
    if peers:
        vals = {k: [p[k] for p in peers] for k in ("war", "uar")}
        peer_summary = {
            k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0} for k, v in vals.items()
        }
        peer_summary["note"] = peers[0]["note"]
    tests = [m.int8.test if m.int8 is not None else None for m in folds]
    int8_pooled = pooled_check(tests) if tests and all(t and "support" in t for t in tests) else None
    headline = ("war", "uar", "macro_f1")
    lines = [FoldLine(m.fold, m.selected.epoch, {k: m.selected.test[k] for k in headline},
                      {k: m.last.test[k] for k in headline}) for m in folds]
    return CVResult(class_names=first.class_names, protocol=first.protocol, dataset=first.split.get("dataset", ""),
                    folds=[m.fold for m in folds], selected=summaries["selected"], last=summaries["last"],
                    per_fold=lines, peer_best_on_test=peer_summary, int8_pooled=int8_pooled)
