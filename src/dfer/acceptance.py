"""When is a reduced-precision (int8, bf16) model good enough? When the accuracy users see holds.

The rule: on held-out labelled clips, the reduced model's WAR and UAR are each at most `max_drop`
points below float32's (1.0 for one model; 0.5 pooled over a cross-validation's test clips). Each
difference comes with a 95% paired bootstrap interval (the same clips resampled for both models),
and the top-1 agreement with float32 is reported beside it: near-tied clips that any rounding flips
lower the agreement without costing accuracy, which is why agreement is not the rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfer.options import MAX_DROP_POINTS

CV_MAX_DROP_POINTS = 0.5
BOOTSTRAP = 1000


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
    return {
        "rule": "accuracy", "clips": int(len(labels)), "max_drop_points": max_drop,
        "war_fp32": war_a, "war": war_b, "uar_fp32": uar_a, "uar": uar_b,
        "war_diff_points": round(war_diff, 3), "uar_diff_points": round(uar_diff, 3),
        "war_diff_ci95": [round(float(v), 3) for v in np.percentile(d[:, 0], [2.5, 97.5])],
        "uar_diff_ci95": [round(float(v), 3) for v in np.percentile(d[:, 1], [2.5, 97.5])],
        "top1_agreement": float(np.mean(a == b)) if len(a) else float("nan"),
        "accepted": bool(war_diff >= -max_drop and uar_diff >= -max_drop),
        # per class: clips, and how many each model gets right (pooling over folds needs these)
        "support": np.bincount(labels, minlength=num_classes).tolist(),
        "correct_fp32": np.bincount(labels[a == labels], minlength=num_classes).tolist(),
        "correct": np.bincount(labels[b == labels], minlength=num_classes).tolist(),
    }


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
    return (f"WAR {100 * check['war']:.2f}% vs {100 * check['war_fp32']:.2f}% in float32 "
            f"({check['war_diff_points']:+.2f} points, 95% CI {wci[0]:+.2f}..{wci[1]:+.2f}), "
            f"UAR {100 * check['uar']:.2f}% vs {100 * check['uar_fp32']:.2f}% ({check['uar_diff_points']:+.2f}, "
            f"CI {uci[0]:+.2f}..{uci[1]:+.2f}), top-1 agreement "
            f"{100 * check['top1_agreement']:.1f}% on {check['clips']} labelled clips")
