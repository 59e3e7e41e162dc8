"""`dfer ablate`'s parts: the paper's comparisons under one protocol (the job: dfer.runs.run_ablation).

Every variant is cross-validated on the same cache with the same folds, seed, epochs and clip
size (one base config, one override list per variant); the report puts WAR and UAR (mean ± std),
per-class recall, GMACs and parameters side by side, and each variant's per-fold paired difference
against the paper's full model with a two-sided sign test over folds.

    DIR/<variant>/        a `dfer cv` run folder per variant (resumable)
    DIR/metrics.json      every number of the report
    DIR/report.md
"""

from __future__ import annotations

import math
from typing import Any

from dfer.engine.report import recall_table
from dfer.engine.results import CVResult, FoldResult
from dfer.engine.variants import DEFAULT_VARIANTS, VARIANTS
from dfer.errors import ConfigError
from dfer.formatting import percent


def parse_variants(text: str | None) -> list[str]:
    names = [v.strip() for v in (text or ",".join(DEFAULT_VARIANTS)).split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ConfigError(f"unknown ablation variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if "full" not in names:
        names.insert(0, "full")  # the reference every difference is taken against
    return list(dict.fromkeys(names))


def sign_test(diffs: list[float]) -> float:
    """Two-sided sign test p-value over folds (ties dropped); 1.0 when no fold differs."""
    pos, neg = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    n = pos + neg
    if n == 0:
        return 1.0
    k = min(pos, neg)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def variant_result(name: str, cv: CVResult, first: FoldResult) -> dict[str, Any]:
    """A variant's line of the comparison: its cross-validation and its first fold's cost."""
    cost = first.cost or {}
    sel = cv.selected
    return {
        "description": VARIANTS[name][0], "overrides": VARIANTS[name][1],
        "war": sel.war.to_dict(), "uar": sel.uar.to_dict(), "macro_f1": sel.macro_f1.to_dict(),
        "per_class_recall_mean": sel.per_class_recall["mean"], "pooled": sel.pooled,
        "per_fold": {f.fold: f.selected for f in cv.per_fold},
        "gmacs_run_clip": cost.get("run", {}).get("gmacs"), "gmacs_16x112x112": cost.get("paper_clip", {}).get("gmacs"),
        "params": cost.get("run", {}).get("params"), "class_names": cv.class_names,
    }


def paired(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: fold-wise differences against `full` (variant - full) and the sign test."""
    ref = results["full"]["per_fold"]
    out = {}
    for name, r in results.items():
        if name == "full":
            continue
        folds = [f for f in r["per_fold"] if f in ref]
        entry = {}
        for metric in ("war", "uar"):
            diffs = [r["per_fold"][f][metric] - ref[f][metric] for f in folds]
            entry[metric] = {"per_fold": dict(zip(folds, diffs)), "mean": sum(diffs) / max(1, len(diffs)),
                             "sign_test_p": sign_test(diffs)}
        out[name] = entry
    return out


def ablation_report(s: dict[str, Any]) -> str:
    res, pair = s["variants"], s["paired_vs_full"]
    names = next(iter(res.values()))["class_names"]
    cfg = s["base_config"]
    d = cfg["data"]
    folds = len(next(iter(res.values()))["per_fold"])
    lines = [
        "# dfer ablate", "",
        f"Cache `{s['cache']}`; {folds} folds, the same for every variant; clips {d['num_frames']}x{d['size']}x{d['size']}; "
        f"{cfg['optim']['epochs']} epochs; seed {cfg['runtime']['seed']}; backbone init "
        f"{cfg['weights'] or 'random'}. Each fold's model is selected on its validation part; test numbers below.", "",
        "| variant | WAR | UAR | macro-F1 | GMACs (run clip) | GMACs (16x112x112) | params (M) |",
        "|---|---|---|---|---|---|---|",
    ]
    def num(v, scale=1.0):
        return "n/a" if v is None else f"{v / scale:.2f}"

    for name, r in res.items():
        lines.append(f"| {name} | {percent(r['war']['mean'])} ± {percent(r['war']['std'])} | {percent(r['uar']['mean'])} ± "
                     f"{percent(r['uar']['std'])} | {percent(r['macro_f1']['mean'])} | {num(r['gmacs_run_clip'])} | "
                     f"{num(r['gmacs_16x112x112'])} | {num(r['params'], 1e6)} |")
    lines += ["", "## Per-class test recall (%, mean over folds)", "",
              recall_table([(n, {"per_class_recall": r["per_class_recall_mean"], "uar": r["uar"]["mean"],
                                 "war": r["war"]["mean"]}) for n, r in res.items()], names,
                           support=next(iter(res.values()))["pooled"]["support"]), "",
              "## Paired differences against the full model (points, variant - full, per fold)", "",
              "| variant | WAR diff (mean) | WAR per fold | sign test p | UAR diff (mean) | sign test p |",
              "|---|---|---|---|---|---|"]
    for name, p in pair.items():
        w, u = p["war"], p["uar"]
        per = ", ".join(percent(v, 1, signed=True) for v in w["per_fold"].values())
        lines.append(f"| {name} | {percent(w['mean'], signed=True)} | {per} | {w['sign_test_p']:.3f} | "
                     f"{percent(u['mean'], signed=True)} | "
                     f"{u['sign_test_p']:.3f} |")
    lines += ["", "What each variant is:", ""]
    lines += [f"- `{n}`: {r['description']}" + (f" (`{' '.join(r['overrides'])}`)" if r["overrides"] else "")
              for n, r in res.items()]
    lines += ["", "The sign test counts the folds where a variant beats the full model; with k folds its "
              "smallest possible p is 2 / 2^k, so few folds can show a direction but rarely significance.", ""]
    return "\n".join(lines)
