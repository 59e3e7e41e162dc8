"""Model cards: MODEL_CARD.md for every trained model, in the layout model hubs read.

The YAML front matter carries the hub's fields (license, library, tags, datasets, and a
model-index with the test metrics); the sections say what the model is and costs, what it was
trained and evaluated on and how (selection on validation, never on test), its results with the
clip counts behind them, and where it should not be used. Everything comes from the checkpoint
and the run's metrics.json beside it; nothing is typed in by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dfer.acceptance import Int8Status
from dfer.checkpoint import Checkpoint, load_checkpoint
from dfer.engine.report import model_cost
from dfer.engine.results import CVResult, FoldResult
from dfer.files import atomic_write_text, file_digest
from dfer.formatting import percent
from dfer.preprocess import SYNTHETIC_WARNING
from dfer.remote import is_remote, resolve_checkpoint

CARD_NAME = "MODEL_CARD.md"
_DATASET_NAMES = {"dfew": "DFEW", "afew": "AFEW", "mafw": "MAFW", "ferv39k": "FERV39k", "ckplus": "CK+"}
_NOT_FOR = [
    "decisions about people: hiring, grading, credit, insurance, policing, border control, or lie detection;",
    "inferring what someone feels: the labels describe visible facial movement as annotated in the training set, "
    "not inner emotional states;",
    "anyone who has not agreed to be analysed, or any use the training data's licence forbids.",
]


def _dataset_label(name: str, synthetic: bool) -> str:
    if synthetic:
        return "dfer synth (synthetic cartoon faces)"
    base = name.split("-")[0]
    return _DATASET_NAMES.get(base, name or "unknown") + (name[len(base):] if base in _DATASET_NAMES else "")


def _front_matter(name: str, dataset: str, synthetic: bool, test: dict[str, Any] | None, split_name: str) -> str:
    results = []
    if test:
        results = [{"task": {"type": "video-classification", "name": "Dynamic facial expression recognition"},
                    "dataset": {"name": _dataset_label(dataset, synthetic), "type": dataset or "unknown",
                                "split": split_name},
                    "metrics": [{"type": "accuracy", "name": "WAR", "value": round(100 * test["war"], 2)},
                                {"type": "recall", "name": "UAR", "value": round(100 * test["uar"], 2)}]}]
    meta = {
        "license": "mit" if synthetic else "other",
        "library_name": "dfer",
        "pipeline_tag": "video-classification",
        "tags": ["dfer", "facial-expression-recognition", "video"] + (["synthetic-data"] if synthetic else []),
        "datasets": [dataset or "unknown"],
        "metrics": ["accuracy", "recall"],
        "model-index": [{"name": name, "results": results}],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _recall_table(test: dict[str, Any]) -> list[str]:
    names = test["class_names"]
    lines = ["| class | test clips | recall (%) |", "|---|---|---|"]
    for k, name in enumerate(names):
        lines.append(f"| {name} | {test['support'][k]} | {percent(test['per_class_recall'][k])} |")
    return lines


def _model_section(ckpt: Checkpoint, cost: dict[str, Any] | None, digest: str) -> list[str]:
    cfg = ckpt.model.config
    pre = ckpt.preprocess
    lines = ["## Model and cost", "",
             f"- architecture: `{ckpt.model.name}` (attention: {cfg.get('attention_stage', 'n/a')}), "
             f"{len(ckpt.class_names)} classes: {', '.join(ckpt.class_names)}",
             f"- input: {pre.num_frames} face crops of {pre.size}x{pre.size}, normalised with mean {list(pre.mean)} "
             f"and std {list(pre.std)}; face pipeline: {pre.face.get('detector', 'dlib')} detector, "
             f"margin {pre.face.get('margin', 'n/a')}"]
    if cost:
        run, paper = cost["run"], cost["paper_clip"]
        t, h, w = run["clip"]
        lines.append(f"- cost: {run['gmacs']:.2f} GMACs per {t}x{h}x{w} clip, {run['params'] / 1e6:.2f} M parameters; "
                     f"{paper['gmacs']:.2f} GMACs at 16x112x112 (the paper reports {cost['paper_gmacs']}); "
                     f"counted by {cost['counter']}")
    lines += [f"- checkpoint SHA-256: `{digest}` (share it as `https://.../best.pt#sha256={digest}`)",
              f"- made with: {', '.join(f'{k} {v}' for k, v in ckpt.versions.items())}", ""]
    return lines


def _distill_section(metrics: FoldResult | None) -> list[str]:
    """Who taught a distilled student, so its lineage can be checked (the teacher's file by SHA-256)."""
    d = metrics.distillation if metrics else None
    if not d:
        return []
    t, s = d["teacher_clip"], d["student_clip"]
    return ["## Distillation", "",
            f"- student `{d['student']}` ({s[0]}x{s[1]}x{s[1]} clips), distilled from teacher `{d['teacher']}` "
            f"(`{d['teacher_model']}`, {t[0]}x{t[1]}x{t[1]} clips)",
            f"- teacher SHA-256: `{d['teacher_sha256']}`; trained on the same fold (split digest "
            f"`{str(d.get('teacher_split_sha256'))[:16]}...`)",
            f"- loss: (1 - {d['alpha']:g}) x CE + {d['alpha']:g} x T^2 x KL(teacher || student) at T = "
            f"{d['temperature']:g}, plus the sparse center loss", ""]


def _data_section(ckpt: Checkpoint, metrics: FoldResult | None) -> list[str]:
    split = ckpt.split
    train = ckpt.train_config
    optim, sizes = train.get("optim", {}), split.get("sizes", {})
    synthetic = bool(split.get("synthetic"))
    selection = f"{metrics.selected.selection} (epoch {metrics.selected.epoch})" if metrics else \
        "on the validation part (epoch ?)"
    lines = ["## Data and protocol", "",
             f"- dataset: {_dataset_label(split.get('dataset', ''), synthetic)}; protocol `{split.get('protocol', '?')}`, "
             f"fold {split.get('fold', '?')} (split SHA-256 `{str(split.get('sha256', ''))[:16]}`)",
             f"- clips: {sizes.get('train', '?')} train, {sizes.get('val', '?')} validation, {sizes.get('test', '?')} test; "
             "subject-independent where the dataset names subjects",
             f"- training: {optim.get('epochs', '?')} epochs, Adam lr {optim.get('lr', '?')}, batch "
             f"{train.get('data', {}).get('batch_size', '?')}, backbone init {train.get('weights') or 'random'}, "
             f"seed {train.get('runtime', {}).get('seed', '?')}",
             f"- model selection: {selection}; "
             "the test part was never used to choose the model", ""]
    return lines


def _results_section(metrics: FoldResult | None) -> list[str]:
    if not metrics or not metrics.selected.test:
        return ["## Results", "", "No test metrics were found beside this checkpoint (metrics.json of its run); "
                "run `dfer evaluate` on its test part.", ""]
    test = metrics.selected.test
    lines = ["## Results", "",
             f"On the fold's test part ({test['num_samples']} clips): **WAR {percent(test['war'])}%**, "
             f"**UAR {percent(test['uar'])}%**, macro-F1 {percent(test['macro_f1'])}%.", ""]
    lines += _recall_table(test) + [""]
    q = metrics.int8
    if q is not None and q.written and q.test:
        t = q.test
        state = "" if q.status is Int8Status.ACCEPTED else " (written, not verified: too few validation clips)"
        lines += [f"- OpenVINO int8 model (`{q.model}`){state}: test WAR {percent(t['war'])}% ({t['war_diff_points']:+.2f} "
                  f"points), UAR {percent(t['uar'])}% ({t['uar_diff_points']:+.2f}), top-1 agreement "
                  f"{percent(t['top1_agreement'])}% with float32", ""]
    elif q is not None:
        lines += [f"- int8 export {q.status}: {(q.reason or '')[:200]}", ""]
    return lines


def _use_section(synthetic: bool) -> list[str]:
    lines = ["## Intended use and limits", ""]
    if synthetic:
        lines += [f"**{SYNTHETIC_WARNING}.** It exists to try dfer end to end; do not use its labels on real video.", ""]
    lines += ["Intended for: research on dynamic facial expression recognition, and the analysis of recorded or live "
              "video of people who agreed to it, with a person reviewing the results.", "", "Not for:", ""]
    lines += [f"- {item}" for item in _NOT_FOR]
    lines += ["", "Known limits: faces are found by dlib's HOG detector, which misses profiles and strong rotations; "
              "accuracy on people, settings and cameras unlike the training set is unknown and usually lower; "
              "posed and acted expressions in the common datasets differ from spontaneous ones.", ""]
    return lines


def model_card(checkpoint: str | Path, metrics: FoldResult | None = None) -> str:
    """The card's Markdown text for a checkpoint (and its run's metrics.json, when given)."""
    path = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(path)
    split = ckpt.split
    synthetic = ckpt.synthetic
    cost = metrics.cost if metrics else None
    if cost is None:
        cost = model_cost(ckpt.model.model_config(), ckpt.preprocess)
    digest = file_digest(path)
    name = f"{ckpt.model.name} {split.get('dataset', '')} fold {split.get('fold', '?')}".strip()
    test = metrics.selected.test if metrics else None
    head = _front_matter(name, split.get("dataset", ""), synthetic, test, f"fold {split.get('fold', '?')} test")
    title = [f"# {name}", "", "A dfer model: dynamic facial expression recognition from face clips (R(2+1)D-18 "
             "backbone, spatio-temporal attention, sparse center loss).", ""]
    usage = ["## How to use", "", "```bash", f"dfer predict talk.mp4 --checkpoint {path.name} --out preds",
             f"dfer predict talk.mp4 --checkpoint 'https://HOST/{path.name}#sha256={digest}' --out preds  # shared by URL",
             "```", ""]
    body = (title + _model_section(ckpt, cost, digest) + _distill_section(metrics) + _data_section(ckpt, metrics)
            + _results_section(metrics))
    return head + "\n" + "\n".join(body + _use_section(synthetic) + usage)


def write_model_card(checkpoint: str | Path, out: str | Path | None = None,
                     metrics: FoldResult | str | Path | None = None) -> Path:
    """MODEL_CARD.md for `checkpoint` (default: beside it); `metrics`: the run's metrics.json (default:
    the one beside the checkpoint, when there is one)."""
    if metrics is None and not is_remote(checkpoint):
        beside = Path(checkpoint).parent / "metrics.json"
        metrics = beside if beside.is_file() else None
    if isinstance(metrics, (str, Path)):
        metrics = FoldResult.load(metrics)
    out = Path(out) if out else (Path(CARD_NAME) if is_remote(checkpoint) else Path(checkpoint).parent / CARD_NAME)
    atomic_write_text(out, model_card(checkpoint, metrics))
    return out


def write_cv_card(out: str | Path, cv: CVResult, fold_dirs: list[Path]) -> Path:
    """RUN/MODEL_CARD.md for a cross-validation: the folds' models, their mean results, links to each card."""
    out = Path(out)
    sel = cv.selected
    dataset = cv.dataset
    first = load_checkpoint(fold_dirs[0] / "best.pt") if (fold_dirs[0] / "best.pt").is_file() else None
    synthetic = first is not None and first.synthetic
    name = f"{first.model.name if first else 'dfer'} {dataset} {len(cv.folds)}-fold CV".strip()
    test = {"war": sel.war.mean, "uar": sel.uar.mean}
    head = _front_matter(name, dataset, synthetic, test, f"mean over {len(cv.folds)} folds' test parts")
    lines = [f"# {name}", "",
             f"{len(cv.folds)} models, one per fold of protocol `{cv.protocol}`, each selected on its own "
             "validation part and tested once on its test part.", "",
             "## Results", "",
             f"WAR {percent(sel.war.mean)} ± {percent(sel.war.std)}%, UAR {percent(sel.uar.mean)} ± "
             f"{percent(sel.uar.std)}% (mean ± sample std over folds).", "",
             "| fold | test WAR (%) | test UAR (%) | model card |", "|---|---|---|---|"]
    for row, d in zip(cv.per_fold, fold_dirs):
        lines.append(f"| {row.fold} | {percent(row.selected['war'])} | {percent(row.selected['uar'])} | "
                     f"[{d.name}/{CARD_NAME}]({d.name}/{CARD_NAME}) |")
    lines.append("")
    atomic_write_text(out / CARD_NAME, head + "\n" + "\n".join(lines + _use_section(synthetic)))
    return out / CARD_NAME
