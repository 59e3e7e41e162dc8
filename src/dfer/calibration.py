"""Calibrated confidence: temperature scaling (Guo et al., 2017) and expected calibration error.

A network trained with cross-entropy (and a center loss) is usually over-confident: among windows
it calls 90% sure, fewer than 90% are right. One scalar T, fitted on the validation part by
minimising the negative log-likelihood of softmax(logits / T), fixes most of that without
changing any prediction (the arg-max is the same for every T > 0). The checkpoint stores T; the
recogniser, exports and the service divide logits by it.

ECE uses 15 equal-width confidence bins: sum over bins of |accuracy - mean confidence| weighted
by the share of samples in the bin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dfer.formatting import percent1

ECE_BINS = 15
T_RANGE = (0.05, 20.0)  # a temperature outside this is a sign of a broken fit, clipped


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, K) probabilities of (N, K) logits divided by `temperature`."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on (logits, labels).

    1.0 when it cannot be fitted: no data, or every clip right (the NLL then falls forever as T -> 0,
    which would make the model certain of everything)."""
    if len(labels) == 0 or bool(np.all(np.asarray(logits).argmax(1) == np.asarray(labels))):
        return 1.0
    import torch  # deferred: inference only needs softmax, and a warm OpenVINO run need not import torch
    import torch.nn.functional as F

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(float(log_t.detach().exp()), *T_RANGE))


def choose_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, str]:
    """The fitted temperature on validation (logits, labels), or 1.0 when scaling would make the validation
    part's calibration error (ECE) worse: a fit on few clips can lower their NLL and still spread the
    confidence of the rest the wrong way. Returns (temperature, why 1.0 was kept or "")."""
    t = fit_temperature(logits, labels)
    if t == 1.0 or len(labels) == 0:
        return t, ""
    before = expected_calibration_error(softmax(logits), np.asarray(labels))
    after = expected_calibration_error(softmax(logits, t), np.asarray(labels))
    if after > before:
        return 1.0, (f"the fitted temperature {t:.2f} would raise the validation calibration error from "
                     f"{percent1(before)} to {percent1(after)}: 1.0 kept")
    return t, ""


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)))) if len(labels) else float("nan")


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict[str, list[float]]:
    """Per confidence bin: mean confidence, accuracy and count (empty bins have count 0)."""
    conf = probs.max(1)
    right = (probs.argmax(1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)  # (N,) bin of each sample
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        m = which == b
        out["count"].append(int(m.sum()))
        out["confidence"].append(float(conf[m].mean()) if m.any() else float("nan"))
        out["accuracy"].append(float(right[m].mean()) if m.any() else float("nan"))
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    r = reliability(probs, labels, bins)
    n = sum(r["count"])
    if n == 0:
        return float("nan")
    return float(sum(c / n * abs(a - m) for c, a, m in zip(r["count"], r["accuracy"], r["confidence"]) if c))


def calibration_summary(temperature: float, val: tuple[np.ndarray, np.ndarray] | None,
                        test: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """Temperature, NLL on validation and ECE / reliability on test, before and after scaling."""
    out: dict[str, Any] = {"temperature": temperature, "fitted_on": "val", "ece_bins": ECE_BINS}
    if val is not None and len(val[1]) and bool(np.all(val[0].argmax(1) == val[1])):
        out["note"] = "every validation clip is right: a temperature cannot be fitted, 1.0 kept"
    if val is not None:
        out["val"] = {"clips": len(val[1]), "nll_before": nll(*val), "nll_after": nll(*val, temperature)}
    if test is not None and len(test[1]):
        before, after = softmax(test[0]), softmax(test[0], temperature)
        out["test"] = {"clips": len(test[1]),
                       "ece_before": expected_calibration_error(before, test[1]),
                       "ece_after": expected_calibration_error(after, test[1]),
                       "reliability_before": reliability(before, test[1]),
                       "reliability_after": reliability(after, test[1])}
    return out


def plot_reliability(summary: dict[str, Any], path: str | Path) -> None:
    """Reliability diagram of the test part before and after temperature scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = summary["test"]
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 4), sharey=True)
    width = 1.0 / summary["ece_bins"]
    centres = (np.arange(summary["ece_bins"]) + 0.5) * width
    panels = ((axes[0], "before", "before (T = 1)"), (axes[1], "after", f"after (T = {summary['temperature']:.2f})"))
    for ax, key, title in panels:
        r = test[f"reliability_{key}"]
        acc = np.nan_to_num(np.array(r["accuracy"], dtype=float))
        ax.bar(centres, acc, width=width * 0.9, color="#2563eb", alpha=0.8, label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="#667085", lw=1, label="perfect calibration")
        ax.set_title(f"{title}: ECE {percent1(test[f'ece_{key}'])}")
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(f"accuracy (test part, {test['clips']} clips)")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
