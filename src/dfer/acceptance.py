"""When is a reduced-precision (int8, bf16) model good enough? When the accuracy users see holds. Every
rule that accepts a model made from another lives here: the accuracy rule, the agreement rule, and the
conversion check a runtime's float model must pass (top-1 agreement and cosine with PyTorch float32).

The accuracy rule, a paired comparison: both models score the same held-out labelled clips, and only
the clips where they disagree carry information about the difference. With n clips, b where float32
is right and the reduced model wrong and c the other way round, the WAR drop is (b - c) / n; its ~95%
bounds come from Wilson's score interval on the share of clips that disagree, (b + c) / n, and on the
share of those that are losses, b / (b + c). Zero disagreements in 47 clips do not show a drop under
one point: they are what a model 6 points worse gives often enough. So the verdict has three values:

- accepted: the WAR drop's upper bound and the UAR drop's (a paired bootstrap) are within `max_drop`
  points (1.0 for one model; 0.5 pooled over a cross-validation's test clips);
- refused: a lower bound is over `max_drop` (the model is worse, and not written);
- unresolved: the clips are too few to tell (the model is written, but `--backend auto` does not run it,
  and the report says why and how many clips would resolve it).
The top-1 agreement with float32 is reported beside it: near-tied clips that any rounding flips lower
the agreement without costing accuracy, which is why agreement is not the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from dfer.formatting import percent, percent1
from dfer.options import AGREEMENT_BAR, MAX_DROP_POINTS

CV_MAX_DROP_POINTS = 0.5
BOOTSTRAP = 1000
COSINE_BAR = 0.99  # a converted float model's logits must point the same way as PyTorch's on every check clip
Z95 = 1.96


class Verdict(str, Enum):
    ACCEPTED = "accepted"
    UNRESOLVED = "unresolved"  # too few clips to tell: written, not run by `auto`
    REFUSED = "refused"

    def __str__(self) -> str:
        return self.value


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion k / n (0..1); (0, 1) for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def paired_drop_bounds(ref_right: np.ndarray, new_right: np.ndarray) -> tuple[float, float]:
    """~95% bounds, in points, of the accuracy drop from `ref` to `new` on the same clips (positive: worse)."""
    n = len(ref_right)
    losses = int(np.sum(ref_right & ~new_right))
    gains = int(np.sum(~ref_right & new_right))
    m_lo, m_hi = wilson(losses + gains, n)  # the share of clips that disagree
    q_lo, q_hi = wilson(losses, losses + gains)  # the share of those that float32 gets right
    hi = m_hi * (2 * q_hi - 1) if q_hi > 0.5 else m_lo * (2 * q_hi - 1)
    lo = m_lo * (2 * q_lo - 1) if q_lo > 0.5 else m_hi * (2 * q_lo - 1)
    return 100 * lo, 100 * hi


def clips_to_resolve(max_drop: float) -> int:
    """Clips with no disagreement at all that bound the drop under `max_drop` points: the fewest a verdict needs."""
    share = max_drop / 100
    return int(np.ceil(Z95 * Z95 * (1 - share) / share))


def war_uar(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Accuracy and mean recall over the classes present in `labels`, in [0, 1]."""
    if len(labels) == 0:
        return float("nan"), float("nan")
    war = float(np.mean(preds == labels))
    recalls = [float(np.mean(preds[labels == k] == k)) for k in range(num_classes) if np.any(labels == k)]
    return war, float(np.mean(recalls))


def accuracy_check(labels: np.ndarray, ref_logits: np.ndarray, new_logits: np.ndarray, num_classes: int,
                   max_drop: float = MAX_DROP_POINTS, seed: int = 0) -> dict[str, Any]:
    """WAR / UAR of float32 (`ref`) and the reduced model (`new`) on the same labelled clips, their
    differences in points (new - ref) with 95% paired bootstrap intervals, agreement, and the verdict."""
    labels = np.asarray(labels, dtype=np.int64)
    a, b = np.asarray(ref_logits).argmax(1), np.asarray(new_logits).argmax(1)
    war_a, uar_a = war_uar(labels, a, num_classes)
    war_b, uar_b = war_uar(labels, b, num_classes)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP if len(labels) else 0):
        idx = rng.integers(0, len(labels), len(labels))
        wa, ua = war_uar(labels[idx], a[idx], num_classes)
        wb, ub = war_uar(labels[idx], b[idx], num_classes)
        diffs.append((wb - wa, ub - ua))
    d = np.array(diffs) * 100 if diffs else np.full((1, 2), np.nan)
    war_diff, uar_diff = 100 * (war_b - war_a), 100 * (uar_b - uar_a)
    war_lo, war_hi = paired_drop_bounds(a == labels, b == labels)
    uar_ci = [float(v) for v in np.percentile(d[:, 1], [2.5, 97.5])]
    verdict, reason = _verdict(len(labels), (war_lo, war_hi), (-uar_ci[1], -uar_ci[0]), max_drop)
    return {
        "rule": "accuracy", "clips": int(len(labels)), "max_drop_points": max_drop,
        "war_fp32": war_a, "war": war_b, "uar_fp32": uar_a, "uar": uar_b,
        "war_diff_points": round(war_diff, 3), "uar_diff_points": round(uar_diff, 3),
        "war_diff_ci95": [round(float(v), 3) for v in np.percentile(d[:, 0], [2.5, 97.5])],
        "uar_diff_ci95": [round(float(v), 3) for v in np.percentile(d[:, 1], [2.5, 97.5])],
        "top1_agreement": float(np.mean(a == b)) if len(a) else float("nan"),
        "war_drop_bounds": [round(war_lo, 3), round(war_hi, 3)],
        "verdict": verdict.value, "accepted": verdict is Verdict.ACCEPTED, "reason": reason,
        # per class: clips, and how many each model gets right (pooling over folds needs these)
        "support": np.bincount(labels, minlength=num_classes).tolist(),
        "correct_fp32": np.bincount(labels[a == labels], minlength=num_classes).tolist(),
        "correct": np.bincount(labels[b == labels], minlength=num_classes).tolist(),
    }


def _verdict(n: int, war_drop: tuple[float, float], uar_drop: tuple[float, float],
             max_drop: float) -> tuple[Verdict, str]:
    """The accuracy rule's verdict from the bounds of the two drops (points, positive: worse), and why."""
    if war_drop[0] > max_drop or uar_drop[0] > max_drop:
        return Verdict.REFUSED, (f"worse by more than {max_drop:g} points: WAR drop {war_drop[0]:.1f} to {war_drop[1]:.1f}, "
                                 f"UAR drop {uar_drop[0]:.1f} to {uar_drop[1]:.1f} points (95%)")
    if war_drop[1] <= max_drop and uar_drop[1] <= max_drop:
        return Verdict.ACCEPTED, (f"within {max_drop:g} points: WAR drop at most {war_drop[1]:.2f}, UAR drop at most "
                                  f"{uar_drop[1]:.2f} points (95%)")
    return Verdict.UNRESOLVED, (f"{n} labelled clips cannot resolve the {max_drop:g}-point bar (the WAR drop is "
                                f"somewhere from {war_drop[0]:.1f} to {war_drop[1]:.1f} points; at least "
                                f"{clips_to_resolve(max_drop)} clips are needed even with no disagreement): written, "
                                "but `--backend auto` keeps float; --precision int8 runs it")


def agreement_check(parity: dict[str, Any], min_agreement: float, note: str = "") -> dict[str, Any]:
    """The agreement rule: top-1 agreement with float32 on held-out clips at least `min_agreement`."""
    ok = parity["top1_agreement"] >= min_agreement
    out = {"rule": "agreement", "clips": parity["clips"], "top1_agreement": parity["top1_agreement"],
           "min_agreement": min_agreement, "verdict": (Verdict.ACCEPTED if ok else Verdict.REFUSED).value, "accepted": ok}
    return {**out, "note": note} if note else out


def conversion_passes(agreement: dict[str, Any]) -> bool:
    """Whether a converted float model's agreement with PyTorch float32 (measured at conversion) clears the
    bars: top-1 agreement AGREEMENT_BAR and cosine COSINE_BAR on every check clip."""
    return agreement.get("top1_agreement", 0.0) >= AGREEMENT_BAR and agreement.get("min_cosine", 0.0) >= COSINE_BAR


class Int8Status(str, Enum):
    """How a fold's int8 export ended (dfer.inference.export.export_fold_int8)."""

    ACCEPTED = "accepted"  # written, verified: `auto` runs it
    UNRESOLVED = "unresolved"  # written, not verified: the validation part was too small to tell
    REFUSED = "refused"  # not written: it is worse
    FAILED = "failed"  # not made (no NNCF, a quantiser's error)

    def __str__(self) -> str:
        return self.value


@dataclass
class Int8Outcome:
    """A fold's int8 export: its status, the model file (when written), how it was made, the acceptance
    record on the validation part and the report on the test part, or the reason it was not made."""

    status: Int8Status
    model: str | None = None
    method: str | None = None
    val: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def written(self) -> bool:
        return self.status in (Int8Status.ACCEPTED, Int8Status.UNRESOLVED)

    def to_dict(self) -> dict[str, Any]:
        if not self.written:
            return {"status": self.status.value, "reason": self.reason}
        out = {"status": self.status.value, "model": self.model, "method": self.method, "val": self.val, "test": self.test}
        return {**out, "reason": self.reason} if self.reason else out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Int8Outcome:
        return cls(Int8Status(d["status"]), d.get("model"), d.get("method"), d.get("val"), d.get("test"), d.get("reason"))

    def line(self) -> str:
        """One line for a log or a report."""
        if self.status is Int8Status.ACCEPTED:
            return f"int8 accepted ({self.model}): validation {describe(self.val)}"
        if self.status is Int8Status.UNRESOLVED:
            return f"int8 written but not used by auto ({self.model}): {self.reason}"
        return f"int8 {self.status.value}: {self.reason}"


def pooled_check(checks: list[dict[str, Any]], max_drop: float = CV_MAX_DROP_POINTS) -> dict[str, Any]:
    """The rule over a cross-validation: WAR and UAR of the folds' test clips pooled, float32 vs reduced."""
    support = np.sum([c["support"] for c in checks], axis=0)
    out: dict[str, Any] = {"rule": "accuracy, pooled over folds", "clips": int(support.sum()), "max_drop_points": max_drop,
                           "folds": len(checks)}
    for key, name in (("correct_fp32", "_fp32"), ("correct", "")):
        right = np.sum([c[key] for c in checks], axis=0)
        out["war" + name] = float(right.sum() / support.sum())
        out["uar" + name] = float(np.mean(right[support > 0] / support[support > 0]))
    out["war_diff_points"] = round(100 * (out["war"] - out["war_fp32"]), 3)
    out["uar_diff_points"] = round(100 * (out["uar"] - out["uar_fp32"]), 3)
    out["accepted"] = bool(out["war_diff_points"] >= -max_drop and out["uar_diff_points"] >= -max_drop)
    return out


def describe(check: dict[str, Any]) -> str:
    """One line: the figures and the verdict."""
    wci, uci = check["war_diff_ci95"], check["uar_diff_ci95"]
    return (f"WAR {percent(check['war'], suffix='%')} vs {percent(check['war_fp32'], suffix='%')} in float32 "
            f"({check['war_diff_points']:+.2f} points, 95% CI {wci[0]:+.2f}..{wci[1]:+.2f}), "
            f"UAR {percent(check['uar'], suffix='%')} vs {percent(check['uar_fp32'], suffix='%')} "
            f"({check['uar_diff_points']:+.2f}, "
            f"CI {uci[0]:+.2f}..{uci[1]:+.2f}), top-1 agreement "
            f"{percent1(check['top1_agreement'])} on {check['clips']} labelled clips")
