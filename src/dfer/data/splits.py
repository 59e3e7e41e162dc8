"""Cross-validation splits, saved as `splits.json` beside the cache.

    {"dataset": ..., "seed": 0, "val_fraction": 0.1, "default": "official" | "kfold",
     "protocols": {"kfold": {"folds": [{"name": "1", "train": [ids], "val": [ids], "test": [ids]}, ...]},
                   "official": {...}}}

- DFEW: `official` = the dataset's 5 folds (default).
- AFEW: `kfold` = stratified k-fold over train+val (default); `official` = Train_AFEW vs Val_AFEW.
- DAiSEE: `kfold` = subject-grouped stratified k-fold (default); `official` = train/validation/test.
- MAFW: `official` = the dataset's 5 folds (single-label protocol, default).
- FERV39k: `official` = the dataset's train/test split (default), validation carved from train.
- folder / manifest: `kfold` (grouped by subject when the manifest gives one).
Every training part gets a validation part carved out of it (stratified, subject-grouped
where subjects are known) that model selection uses; test folds are never looked at.
Only clips prepared successfully take part. Seeded, so the same cache gives the same splits.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfer.data.cache import ClipRow
from dfer.errors import DatasetError
from dfer.files import text_digest


def _sgkf_parts(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[np.ndarray]:
    """Test index sets of a stratified group k-fold (groups never straddle parts)."""
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise DatasetError(f"cannot make {n_splits} folds from {n_groups} clips/subjects; prepare more data or use fewer folds")
    if np.bincount(np.unique(labels, return_inverse=True)[1]).max() < n_splits:
        labels = np.zeros_like(labels)  # every class smaller than the part count: group split only
    from sklearn.model_selection import StratifiedGroupKFold  # imported here: 1.5 s that only splitting needs

    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small classes: sklearn warns, still splits
        return [test for _, test in cv.split(np.zeros(len(labels)), labels, groups)]


def carve_validation(
    ids: Sequence[str], rows: dict[str, ClipRow], fraction: float, seed: int, grouped: bool
) -> tuple[list[str], list[str]]:
    """Split a training part into (train, val)."""
    ids = list(ids)
    if fraction <= 0 or len(ids) < 4:
        return ids, []
    labels = np.array([rows[i].label for i in ids])
    groups = np.array([rows[i].subject if grouped and rows[i].subject else i for i in ids])
    n_groups = len(np.unique(groups))
    # Small sets: fewer, larger parts rather than no validation at all.
    n_splits = min(max(2, int(round(1 / fraction))), n_groups)
    if n_splits < 2:
        return ids, []
    val_idx = set(_sgkf_parts(labels, groups, n_splits, seed)[0].tolist())
    train = [i for k, i in enumerate(ids) if k not in val_idx]
    val = [i for k, i in enumerate(ids) if k in val_idx]
    return train, val


def kfold(rows: dict[str, ClipRow], k: int, seed: int, grouped: bool) -> list[dict[str, Any]]:
    ids = sorted(rows)
    labels = np.array([rows[i].label for i in ids])
    groups = np.array([rows[i].subject if grouped and rows[i].subject else i for i in ids])
    parts = _sgkf_parts(labels, groups, k, seed)
    folds = []
    for n, test_idx in enumerate(parts, start=1):
        test_set = set(test_idx.tolist())
        folds.append({"name": str(n), "test": [ids[j] for j in sorted(test_set)],
                      "train": [ids[j] for j in range(len(ids)) if j not in test_set]})
    return folds


def make_splits(
    dataset: str,
    rows: Sequence[ClipRow],
    official: dict[str, list[dict[str, list[str]]]] | None = None,
    *,
    k: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    grouped: bool = False,
    default: str | None = None,
) -> dict[str, Any]:
    """Every protocol's folds over the clips prepared ok; `default` forces the default protocol."""
    ok = {r.id: r for r in rows if r.status == "ok"}
    if not ok:
        raise DatasetError("no clip was prepared successfully; nothing to split")
    protocols: dict[str, Any] = {}
    for name, folds in (official or {}).items():
        out = []
        for f in folds:
            train = [i for i in f.get("train", []) if i in ok]
            test = [i for i in f.get("test", []) if i in ok]
            if f.get("val"):
                val = [i for i in f["val"] if i in ok]
            else:
                train, val = carve_validation(train, ok, val_fraction, seed, grouped)
            out.append({"name": f["name"], "train": train, "val": val, "test": test})
        protocols[name] = {"folds": out}
    if "official" not in protocols or len(protocols["official"]["folds"]) == 1:
        try:
            folds = kfold(ok, k, seed, grouped)
        except DatasetError:
            if not protocols:
                raise
            folds = []
        for f in folds:
            f["train"], f["val"] = carve_validation(f["train"], ok, val_fraction, seed, grouped)
        if folds:
            keys = ("name", "train", "val", "test")
            protocols["kfold"] = {"folds": [{k: f[k] for k in keys} for f in folds]}
    if default not in protocols:
        default = "official" if "official" in protocols and len(protocols["official"]["folds"]) > 1 else (
            "kfold" if "kfold" in protocols else "official")
    return {"dataset": dataset, "seed": seed, "k": k, "val_fraction": val_fraction, "grouped": grouped,
            "default": default, "protocols": protocols}


@dataclass(frozen=True)
class Fold:
    """One fold of a protocol: the clip ids of its parts (validation carved from training; test never looked at)."""

    name: str
    train: list[str]
    val: list[str]
    test: list[str]

    def part(self, name: str) -> list[str]:
        """The ids of one part (train, val or test)."""
        if name not in PARTS:
            raise DatasetError(f"a fold's parts are {', '.join(PARTS)}, not {name!r}")
        return getattr(self, name)

    def ids(self) -> dict[str, list[str]]:
        """{"train", "val", "test"}: as split.json and the checkpoints' split record keep them."""
        return {k: self.part(k) for k in PARTS}

    @property
    def digest(self) -> str:
        """sha256 of the parts' ids: checkpoints carry it, so a split change is noticed."""
        return text_digest(json.dumps(self.ids(), sort_keys=True))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fold:
        return cls(str(d["name"]), list(d.get("train", [])), list(d.get("val", [])), list(d.get("test", [])))


PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Splits:
    """A cache's splits.json: its protocols, each a list of folds, and the default protocol. Read here alone
    (`Splits.load`), without the cache builder that writes it (dfer.data.prepare)."""

    dataset: str
    default: str
    protocols: dict[str, list[Fold]]
    seed: int = 0
    val_fraction: float = 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Splits:
        return cls(str(d.get("dataset", "")), str(d["default"]),
                   {name: [Fold.from_dict(f) for f in p["folds"]] for name, p in d["protocols"].items()},
                   int(d.get("seed", 0)), float(d.get("val_fraction", 0.0)))

    @classmethod
    def load(cls, cache_root: str | Path) -> Splits:
        path = Path(cache_root) / "splits.json"
        if not path.is_file():
            raise DatasetError(f"{path}: no splits.json; run `dfer prepare` first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: not a splits.json dfer wrote ({exc.__class__.__name__}: {exc})") from None

    def folds(self, protocol: str | None = None) -> list[Fold]:
        protocol = protocol or self.default
        if protocol not in self.protocols:
            raise DatasetError(f"split protocol {protocol!r} not in splits.json (have {sorted(self.protocols)})")
        return self.protocols[protocol]

    def fold(self, name: int | str, protocol: str | None = None) -> Fold:
        folds = self.folds(protocol)
        for f in folds:
            if f.name == str(name):
                return f
        raise DatasetError(f"fold {name} not in protocol {protocol or self.default!r} (folds {[f.name for f in folds]})")
