"""What a finished fold and a finished cross-validation report, as types (written as metrics.json).

`FoldResult` is RUN/metrics.json of `dfer train` (one fold), `CVResult` RUN/metrics.json of `dfer cv`;
the reports, model cards, ablations, the demo and the CLI read these fields instead of looking keys up
in nested dicts. `to_dict()` writes the same keys in the same order as every earlier dfer, and
`from_dict()` reads files of earlier versions (a missing optional entry is None).

The scores inside stay dicts: a `Report` is dfer.metrics' per-part report (war, uar, macro_f1,
per_class_recall, confusion, support, num_samples, loss), a `FoldsSummary` its mean/std over folds
(dfer.metrics.aggregate_folds): their keys are the metric names a reader asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfer.acceptance import Int8Outcome

Report = dict[str, Any]  # dfer.metrics report of one part (test or validation)

NO_VALIDATION = "last epoch (no validation part)"


@dataclass
class SelectedCheckpoint:
    """best.pt: the checkpoint chosen on the validation part (or the last one when there is none)."""

    epoch: int  # 1-based
    selection: str  # how it was chosen, e.g. "best validation war" or NO_VALIDATION
    val: dict[str, Any] | None  # its epoch's row of log.csv
    test: Report | None  # None: the fold has no test part


@dataclass
class LastCheckpoint:
    """The weights after the last epoch trained."""

    epoch: int
    test: Report | None


@dataclass
class FoldResult:
    """One fold's run: selection, test scores, calibration, int8, cost (RUN/metrics.json of `dfer train`)."""

    fold: str
    protocol: str
    class_names: list[str]
    split: dict[str, Any]  # cache, dataset, protocol, fold, sha256, synthetic, sizes
    selected: SelectedCheckpoint
    last: LastCheckpoint
    stopped_early: bool = False
    world_size: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)  # log.csv's rows
    calibration: dict[str, Any] | None = None  # dfer.calibration.calibration_summary of best.pt
    int8: Int8Outcome | None = None  # dfer.inference.export.export_fold_int8's answer; None: not asked
    distillation: dict[str, Any] | None = None  # `dfer distill` only: the teacher and the loss
    peer_best_on_test: dict[str, Any] | None = None  # --peer-best-on-test only
    cost: dict[str, Any] | None = None  # dfer.engine.report.model_cost

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "fold": self.fold, "protocol": self.protocol, "class_names": self.class_names, "split": self.split,
            "selected": {"epoch": self.selected.epoch, "selection": self.selected.selection, "val": self.selected.val,
                         "test": self.selected.test},
            "last": {"epoch": self.last.epoch, "test": self.last.test},
            "stopped_early": self.stopped_early, "world_size": self.world_size, "history": self.history,
            "calibration": self.calibration, "int8": self.int8.to_dict() if self.int8 is not None else None,
        }
        for key in ("distillation", "peer_best_on_test", "cost"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FoldResult:
        sel, last = d.get("selected") or {}, d.get("last") or {}
        return cls(
            fold=str(d.get("fold", "")), protocol=d.get("protocol", ""), class_names=list(d.get("class_names", [])),
            split=dict(d.get("split") or {}),
            selected=SelectedCheckpoint(int(sel.get("epoch", 0)), sel.get("selection", ""), sel.get("val"),
                                        sel.get("test")),
            last=LastCheckpoint(int(last.get("epoch", 0)), last.get("test")),
            stopped_early=bool(d.get("stopped_early", False)), world_size=int(d.get("world_size", 1)),
            history=list(d.get("history") or []), calibration=d.get("calibration"),
            int8=Int8Outcome.from_dict(d["int8"]) if d.get("int8") else None,
            distillation=d.get("distillation"), peer_best_on_test=d.get("peer_best_on_test"), cost=d.get("cost"))

    @classmethod
    def load(cls, path: str | Path) -> FoldResult:
        """A fold's metrics.json, or the run folder holding it."""
        path = Path(path)
        return cls.from_dict(json.loads((path / "metrics.json" if path.is_dir() else path).read_text()))


@dataclass
class MeanStd:
    """A metric over folds: mean, sample std (ddof 1; 0 for one fold) and each fold's value."""

    mean: float
    std: float
    folds: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "folds": self.folds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeanStd:
        return cls(float(d["mean"]), float(d["std"]), [float(v) for v in d.get("folds", [])])


@dataclass
class FoldsSummary:
    """The folds' test reports of one checkpoint kind (selected or last), summarised: mean ± std of WAR, UAR
    and macro-F1, per-class recall, and the report of the pooled confusion (dfer.metrics.aggregate_folds)."""

    num_folds: int
    war: MeanStd
    uar: MeanStd
    macro_f1: MeanStd
    per_class_recall: dict[str, list[float]]  # {"mean": [...], "std": [...]} per class
    pooled: Report  # the report of the summed confusion matrices

    def to_dict(self) -> dict[str, Any]:
        return {"num_folds": self.num_folds, "war": self.war.to_dict(), "uar": self.uar.to_dict(),
                "macro_f1": self.macro_f1.to_dict(), "per_class_recall": self.per_class_recall, "pooled": self.pooled}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FoldsSummary:
        return cls(int(d.get("num_folds", len(d["war"].get("folds", [])))), MeanStd.from_dict(d["war"]),
                   MeanStd.from_dict(d["uar"]), MeanStd.from_dict(d["macro_f1"]), d["per_class_recall"], d["pooled"])


@dataclass
class FoldLine:
    """One fold's line in a cross-validation: the selected and the last checkpoint's headline test scores."""

    fold: str
    selected_epoch: int
    selected: dict[str, float]  # war, uar, macro_f1
    last: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"fold": self.fold, "selected_epoch": self.selected_epoch, "selected": self.selected, "last": self.last}


@dataclass
class CVResult:
    """A cross-validation: mean ± std over folds and the pooled confusion (RUN/metrics.json of `dfer cv`)."""

    class_names: list[str]
    protocol: str
    dataset: str
    folds: list[str]
    selected: FoldsSummary  # the folds' selected checkpoints
    last: FoldsSummary  # the folds' last checkpoints
    per_fold: list[FoldLine]
    peer_best_on_test: dict[str, Any] | None = None  # --peer-best-on-test only: {"war": {mean, std}, "uar", "note"}
    int8_pooled: dict[str, Any] | None = None  # dfer.acceptance.pooled_check over the folds' int8 models

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"class_names": self.class_names, "protocol": self.protocol, "dataset": self.dataset,
                             "folds": self.folds, "selected": self.selected.to_dict(), "last": self.last.to_dict()}
        if self.peer_best_on_test is not None:
            d["peer_best_on_test"] = self.peer_best_on_test
        if self.int8_pooled is not None:
            d["int8_pooled"] = self.int8_pooled
        d["per_fold"] = [f.to_dict() for f in self.per_fold]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CVResult:
        return cls(class_names=list(d["class_names"]), protocol=d["protocol"], dataset=d.get("dataset", ""),
                   folds=[str(f) for f in d["folds"]], selected=FoldsSummary.from_dict(d["selected"]),
                   last=FoldsSummary.from_dict(d["last"]),
                   per_fold=[FoldLine(str(f["fold"]), int(f["selected_epoch"]), f["selected"], f["last"])
                             for f in d.get("per_fold", [])],
                   peer_best_on_test=d.get("peer_best_on_test"), int8_pooled=d.get("int8_pooled"))

    @classmethod
    def load(cls, path: str | Path) -> CVResult:
        """A cross-validation's metrics.json, or the run folder holding it."""
        path = Path(path)
        return cls.from_dict(json.loads((path / "metrics.json" if path.is_dir() else path).read_text()))
