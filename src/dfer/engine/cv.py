"""K-fold cross-validation: one FoldTrainer per fold, then mean/std over folds and a pooled confusion.

    RUN/fold_<k>/     one fold's run folder (see dfer.engine.trainer)
    RUN/metrics.json  per-fold and aggregated test metrics (selected and last checkpoints)
    RUN/report.md, RUN/confusion*.png
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfer.acceptance import pooled_check
from dfer.data.prepare import load_splits
from dfer.engine.card import write_cv_card
from dfer.engine.config import TrainConfig
from dfer.engine.fabric import make_fabric
from dfer.engine.report import write_cv_report
from dfer.engine.trainer import Callback, train_fold
from dfer.errors import DatasetError
from dfer.files import atomic_write_json
from dfer.metrics import aggregate_folds


def fold_names(data: str | Path, protocol: str | None = None) -> tuple[str, list[str]]:
    splits = load_splits(data)
    protocol = protocol or splits["default"]
    if protocol not in splits["protocols"]:
        raise DatasetError(f"{data}: split protocol {protocol!r} not in splits.json (have {sorted(splits['protocols'])})")
    return protocol, [f["name"] for f in splits["protocols"][protocol]["folds"]]


def aggregate(fold_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    first = fold_metrics[0]
    out: dict[str, Any] = {"class_names": first["class_names"], "protocol": first["protocol"],
                           "dataset": first["split"].get("dataset", ""), "folds": [m["fold"] for m in fold_metrics]}
    for key in ("selected", "last"):
        reports = [m[key]["test"] for m in fold_metrics if m[key]["test"]]
        if not reports:
            raise DatasetError("no fold has a test part; nothing to aggregate")
        out[key] = aggregate_folds(reports)
    peers = [m["peer_best_on_test"] for m in fold_metrics if "peer_best_on_test" in m]
    if peers:
        vals = {k: [p[k] for p in peers] for k in ("war", "uar")}
        out["peer_best_on_test"] = {
            k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0} for k, v in vals.items()
        }
        out["peer_best_on_test"]["note"] = peers[0]["note"]
    tests = [(m.get("int8") or {}).get("test") for m in fold_metrics]
    if tests and all(t and "support" in t for t in tests):
        out["int8_pooled"] = pooled_check(tests)
    out["per_fold"] = [{"fold": m["fold"], "selected_epoch": m["selected"]["epoch"],
                        "selected": {k: m["selected"]["test"][k] for k in ("war", "uar", "macro_f1")},
                        "last": {k: m["last"]["test"][k] for k in ("war", "uar", "macro_f1")}} for m in fold_metrics]
    return out


def run_cv(
    cfg: TrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    folds: Sequence[str] | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    train: Callable[..., dict[str, Any]] = train_fold,
) -> dict[str, Any]:
    """Train and test every fold (or `folds`) into out/fold_<k>; aggregate into out/metrics.json.
    `train`: how one fold is trained (train_fold; dfer distill passes its own, with the fold's teacher)."""
    out = Path(out)
    protocol, names = fold_names(data, cfg.data.protocol)
    cfg = copy.deepcopy(cfg)  # the caller's config stays as it was
    cfg.data.protocol = protocol
    chosen = [str(f) for f in folds] if folds else names
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise DatasetError(f"{data}: folds {unknown} not in protocol {protocol!r} (folds {names})")
    fabric = make_fabric(cfg)
    results = []
    for name in chosen:
        fabric.print(f"== fold {name} ({chosen.index(name) + 1}/{len(chosen)}) ==")
        results.append(train(cfg, data, name, out / f"fold_{name}", resume=resume, fabric=fabric, callbacks=callbacks))
    cv = aggregate(results)
    if fabric.is_global_zero:
        atomic_write_json(out / "metrics.json", cv)
        write_cv_report(out, cv, results)
        write_cv_card(out, cv, [out / f"fold_{name}" for name in chosen])
    fabric.barrier()
    return cv
