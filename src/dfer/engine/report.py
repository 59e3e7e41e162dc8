"""Reports: report.md (the paper's Table 1 layout), confusion matrices and training curves as PNG."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfer.acceptance import Int8Outcome, Int8Status, describe
from dfer.compute_cost import COUNTER, PAPER_GMACS, profile_model
from dfer.engine.results import CVResult, FoldResult
from dfer.files import atomic_write_bytes, atomic_write_text
from dfer.formatting import percent
from dfer.metrics import normalize_confusion
from dfer.models import ModelConfig, build_from_config
from dfer.preprocess import Preprocess


# -- cost ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _cost(config_json: str, clip: tuple[int, int, int]) -> dict[str, Any]:
    model = build_from_config(ModelConfig.from_dict(json.loads(config_json)))
    p = profile_model(model, clip)
    return {"clip": list(clip), "gmacs": p.gmacs, "params": p.params}


def model_cost(model_config, preprocess: Preprocess) -> dict[str, Any]:
    """GMACs and parameters at the run's clip size and at the paper's 16x112x112."""
    key = json.dumps(model_config.to_dict(), sort_keys=True)
    run_clip = (preprocess.num_frames, preprocess.size, preprocess.size)
    out = {"counter": COUNTER, "paper_gmacs": PAPER_GMACS, "run": _cost(key, run_clip)}
    out["paper_clip"] = out["run"] if run_clip == (16, 112, 112) else _cost(key, (16, 112, 112))
    return out


# -- plots ---------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save_fig(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_confusion(cm: Sequence[Sequence[int]], names: Sequence[str], path: Path, *, normalized: bool, title: str) -> None:
    plt = _pyplot()
    cm = np.asarray(cm)
    mat = normalize_confusion(cm) if normalized else cm.astype(float)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    im = ax.imshow(np.nan_to_num(mat), cmap="Blues", vmin=0, vmax=1 if normalized else max(1, mat.max()))
    for i in range(k):
        for j in range(k):
            v = mat[i, j]
            text = "-" if np.isnan(v) else (f"{v:.2f}" if normalized else f"{int(v)}")
            hi = (v if normalized else v / max(1, mat.max())) > 0.55 if not np.isnan(v) else False
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if hi else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _save_fig(fig, path)


def plot_curves(history: list[dict[str, Any]], path: Path, title: str) -> None:
    plt = _pyplot()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))

    def series(key):
        return [np.nan if h.get(key) is None else h[key] for h in history]

    a.plot(ep, series("train_loss"), "o-", label="train total")
    a.plot(ep, series("train_ce"), ".--", label="train CE")
    a.plot(ep, series("val_loss"), "s-", label="val CE")
    a.set_xlabel("epoch")
    a.set_title("loss")
    a.legend(fontsize=8)
    b.plot(ep, series("train_acc"), "o-", label="train acc")
    b.plot(ep, series("val_war"), "s-", label="val WAR")
    b.plot(ep, series("val_uar"), "^-", label="val UAR")
    if any(h.get("test_war") is not None for h in history):
        b.plot(ep, series("test_war"), "x:", label="test WAR (peers' view)")
    b.set_xlabel("epoch")
    b.set_ylim(0, 1)
    b.set_title("accuracy")
    b.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save_fig(fig, path)


# -- markdown ------------------------------------------------------------------------------
def recall_table(rows: list[tuple[str, dict[str, Any] | None]], names: Sequence[str],
                 support: Sequence[int] | None = None) -> str:
    """Per-class recall, UAR and WAR (%), the paper's Table 1 layout; clip counts in the header
    (`support`, else the first row's)."""
    if support is None:
        support = next((r["support"] for _, r in rows if r), [0] * len(names))
    head = ["model"] + [f"{n} ({s})" for n, s in zip(names, support)] + ["UAR", "WAR"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in rows:
        if r is None:
            continue
        rec = r.get("per_class_recall") or [None] * len(names)
        cells = [label] + [percent(v) for v in rec] + [percent(r.get("uar")), percent(r.get("war"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cost_lines(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return []
    run, paper = cost["run"], cost["paper_clip"]
    t, h, w = run["clip"]
    lines = ["## Compute cost", "",
             f"- at the run's clip {t}x{h}x{w}: {run['gmacs']:.2f} GMACs, {run['params'] / 1e6:.2f} M parameters",
             f"- at 16x112x112: {paper['gmacs']:.2f} GMACs (paper: {cost['paper_gmacs']} GMACs)",
             f"- counter: {cost['counter']}", ""]
    return lines


def _calibration_lines(cal: dict[str, Any] | None) -> list[str]:
    if not cal:
        return []
    lines = ["## Calibrated confidence", "",
             f"Temperature T = {cal['temperature']:.3f}, fitted on the validation part ({cal['val']['clips']} clips; "
             f"NLL {cal['val']['nll_before']:.3f} -> {cal['val']['nll_after']:.3f}) and stored in `best.pt`; "
             "predictions divide the logits by T (the predicted class never changes)." +
             (f" Note: {cal['note']}." if cal.get("note") else "")]
    if "test" in cal:
        t = cal["test"]
        lines.append(f"Expected calibration error on the test part ({t['clips']} clips, {cal['ece_bins']} bins): "
                     f"{percent(t['ece_before'])}% before, {percent(t['ece_after'])}% after (`reliability.png`).")
    return lines + [""]


def _int8_lines(q: Int8Outcome | None) -> list[str]:
    if q is None:
        return []
    lines = ["## Deployable int8 model", ""]
    if not q.written:
        return lines + [f"OpenVINO int8 export {q.status}: {q.reason}", ""]
    if q.status is Int8Status.UNRESOLVED:
        lines.append(f"`{q.model}` ({q.method}) is written but not verified: {q.reason}. On the validation part: "
                     f"{describe(q.val)}.")
    else:
        lines.append(f"`{q.model}` ({q.method}), accepted on the validation part: {describe(q.val)}.")
    if q.test:
        lines.append(f"On the test part: {describe(q.test)}.")
    if q.status is Int8Status.UNRESOLVED:
        return lines + ["`dfer predict --checkpoint best.pt` keeps float; `--precision int8` runs it.", ""]
    return lines + ["`dfer predict --checkpoint best.pt` runs it by default (`--precision f32` keeps float).", ""]


def write_fold_report(out: Path, m: FoldResult) -> None:
    names = m.class_names
    sel, last = m.selected, m.last
    if sel.test:
        cm = sel.test["confusion"]
        title = f"fold {m.fold}, selected (epoch {sel.epoch}), test"
        plot_confusion(cm, names, out / "confusion.png", normalized=False, title=title + ", counts")
        plot_confusion(cm, names, out / "confusion_normalized.png", normalized=True, title=title + ", row-normalised")
    if m.history:
        plot_curves(m.history, out / "curves.png", f"fold {m.fold}")
    split = m.split
    lines = [
        f"# dfer: fold {m.fold} ({split.get('dataset', '')}, protocol {m.protocol})", "",
        f"Clips: {split['sizes']['train']} train, {split['sizes']['val']} validation, {split['sizes']['test']} test. "
        f"Model selection: {sel.selection} (epoch {sel.epoch} of {last.epoch}); the test part was not "
        "looked at for selection.", "",
        "## Test recall per class (%)", "",
        recall_table([(f"selected (epoch {sel.epoch})", sel.test), (f"last (epoch {last.epoch})", last.test)], names),
        "",
    ]
    if sel.test:
        lines += [f"Macro-F1 (selected): {percent(sel.test['macro_f1'])}.", ""]
    if m.peer_best_on_test is not None:
        p = m.peer_best_on_test
        lines += [f"Best epoch chosen on the test part ({p['note']}): epoch {p['epoch']}, WAR {percent(p['war'])}, "
                  f"UAR {percent(p['uar'])}.", ""]
    lines += _calibration_lines(m.calibration)
    lines += _int8_lines(m.int8)
    lines += _cost_lines(m.cost)
    lines += ["## Files", "", "- `confusion.png`, `confusion_normalized.png`: test confusion of the selected model",
              "- `curves.png`, `log.csv`, `tb/`: training curves", "- `best.pt` (selected), `last.pt` (resume)",
              "- `metrics.json`: every number above", ""]
    if m.stopped_early:
        lines.insert(4, "Training stopped early (no validation gain within the patience).\n")
    atomic_write_text(out / "report.md", "\n".join(lines))


def write_cv_report(out: Path, cv: CVResult, folds: list[FoldResult]) -> None:
    names = cv.class_names
    pooled = cv.selected.pooled
    plot_confusion(pooled["confusion"], names, out / "confusion.png", normalized=False,
                   title=f"{len(folds)}-fold cross-validation, selected models, pooled test counts")
    plot_confusion(pooled["confusion"], names, out / "confusion_normalized.png", normalized=True,
                   title=f"{len(folds)}-fold cross-validation, selected models, pooled, row-normalised")
    rows = [(f"fold {f.fold} (epoch {f.selected.epoch})", f.selected.test) for f in folds]
    sel, last = cv.selected, cv.last

    def ms(summary, key):  # a FoldsSummary's metric, or the peers' {"war": {"mean", "std"}} dict
        m = summary[key] if isinstance(summary, dict) else getattr(summary, key)
        mean, std = (m["mean"], m["std"]) if isinstance(m, dict) else (m.mean, m.std)
        return f"{percent(mean)} ± {percent(std)}"

    mean_row = {"per_class_recall": sel.per_class_recall["mean"], "uar": sel.uar.mean, "war": sel.war.mean,
                "support": pooled["support"]}
    lines = [
        f"# dfer: {len(folds)}-fold cross-validation ({cv.dataset}, protocol {cv.protocol})", "",
        "Each fold's model is selected on a validation part carved out of its training part; test folds are "
        "never used for selection.", "",
        "## Summary (test, %, mean ± sample std over folds)", "",
        "| checkpoint | WAR | UAR | macro-F1 |", "|---|---|---|---|",
        f"| selected on validation | {ms(sel, 'war')} | {ms(sel, 'uar')} | {ms(sel, 'macro_f1')} |",
        f"| last epoch | {ms(last, 'war')} | {ms(last, 'uar')} | {ms(last, 'macro_f1')} |",
    ]
    if cv.peer_best_on_test:
        p = cv.peer_best_on_test
        lines.append(f"| best epoch on test (peers' protocol, optimistic) | {ms(p, 'war')} | {ms(p, 'uar')} | n/a |")
    lines += ["", "## Per-class recall of the selected models (%)", "",
              "Counts in the header are the pooled test clips over folds.", "",
              recall_table(rows + [("mean over folds", mean_row), ("pooled confusion", pooled)], names,
                           support=pooled["support"]), ""]
    cals = [f.calibration["test"] for f in folds if (f.calibration or {}).get("test")]
    if cals:
        lines += ["## Calibrated confidence", "",
                  f"Expected calibration error on the test parts (15 bins), mean over {len(cals)} folds: "
                  f"{percent(float(np.mean([c['ece_before'] for c in cals])))}% before temperature scaling, "
                  f"{percent(float(np.mean([c['ece_after'] for c in cals])))}% after (each fold's T fitted on its "
                  "validation part; per fold in `fold_*/report.md`).", ""]
    pooled = cv.int8_pooled
    if pooled:
        lines += ["## Deployable int8 models", "",
                  f"Over the {pooled['folds']} folds' test clips ({pooled['clips']}), pooled: "
                  f"WAR {percent(pooled['war'])} vs {percent(pooled['war_fp32'])} in float32 "
                  f"({pooled['war_diff_points']:+.2f} points), UAR {percent(pooled['uar'])} vs "
                  f"{percent(pooled['uar_fp32'])} ({pooled['uar_diff_points']:+.2f}): "
                  f"{'within' if pooled['accepted'] else 'NOT within'} the {pooled['max_drop_points']:g}-point bar for "
                  "cross-validation.", ""]
    lines += _cost_lines(folds[0].cost if folds else None)
    lines += ["## Files", "", "- `confusion.png`, `confusion_normalized.png`: pooled test confusion of the selected models",
              "- `fold_*/`: each fold's report, curves, checkpoints", "- `metrics.json`: every number above", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
