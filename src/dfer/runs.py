"""The training commands' whole jobs: train a fold, then finish it; a cross-validation; a distillation;
an ablation. dfer.engine trains (and stops at the selected checkpoint); finishing a fold needs the
deployment side too (the int8 export), so the jobs that join both live here, above both.

    train_fold(cfg, data, fold, out)  ->  FoldTrainer(...).run()  then  finish_fold(out)
    finish_fold(run_dir)              ->  test scores of the selected and the last checkpoint, the
                                          temperature, the int8 model, report.md, MODEL_CARD.md and,
                                          last, metrics.json (a fold with metrics.json is finished)
    run_cv / run_distill              ->  every fold, then the folds aggregated (CVResult)
    run_ablation                      ->  run_cv per variant, then the comparison
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dfer.acceptance import Int8Outcome
from dfer.calibration import calibration_summary, choose_temperature, plot_reliability
from dfer.checkpoint import load_checkpoint, save_checkpoint
from dfer.engine.ablate import VARIANTS, ablation_report, paired, parse_variants, variant_result
from dfer.engine.card import write_cv_card, write_model_card
from dfer.engine.config import TrainConfig, load_config
from dfer.engine.cv import aggregate, fold_names
from dfer.engine.distill import DistillTrainer, distill_config, load_teacher, teacher_of_fold
from dfer.engine.fabric import make_fabric
from dfer.engine.report import model_cost, write_cv_report, write_fold_report
from dfer.engine.results import NO_VALIDATION, CVResult, FoldResult, LastCheckpoint, SelectedCheckpoint
from dfer.engine.trainer import Callback, FoldTrainer, TrainProgress, checkpoint_model, load_fold_data, score_part
from dfer.errors import CheckpointError, ConfigError, DatasetError
from dfer.files import atomic_write_json, atomic_write_text
from dfer.inference.export import export_fold_int8

TrainOne = Callable[..., FoldResult]  # (cfg, data, fold, out, *, resume, fabric, callbacks) -> FoldResult


# -- one fold ------------------------------------------------------------------------------


def train_fold(cfg: TrainConfig, data: str | Path, fold: str | int, out: str | Path, *, resume: bool = False,
               fabric=None, callbacks: Sequence[Callback] = ()) -> FoldResult:
    """Train one fold of a prepared cache into `out`, then finish it; its result (also out/metrics.json)."""
    trainer = FoldTrainer(cfg, data, fold, out, resume=resume, fabric=fabric, callbacks=callbacks)
    trainer.run()
    return finish_fold(out, fabric=trainer.fabric)


def distill_fold(cfg: TrainConfig, data: str | Path, fold: str | int, out: str | Path, *, teacher: str | Path,
                 resume: bool = False, fabric=None, callbacks: Sequence[Callback] = ()) -> FoldResult:
    """Distil fold `fold` of a cache from `teacher` (a checkpoint trained on that fold) into `out`, then
    finish it as train_fold does; its result carries the `distillation` entry."""
    t = load_teacher(teacher, data, str(fold), cfg.data.protocol)
    trainer = DistillTrainer(distill_config(cfg, t), data, fold, out, teacher=t, resume=resume, fabric=fabric,
                             callbacks=callbacks)
    trainer.run()
    return finish_fold(out, fabric=trainer.fabric)


def finish_fold(run_dir: str | Path, *, fabric=None, again: bool = False) -> FoldResult:
    """A trained fold's finishing step, from its run folder alone: the test part scored with the selected
    (best.pt) and the last weights, best.pt's temperature fitted on validation, its int8 model, report.md,
    MODEL_CARD.md, then metrics.json. A fold that has metrics.json is finished: it is read back unless
    `again`."""
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if not last_path.is_file():
        raise CheckpointError(f"{run_dir}: no last.pt; train the fold first (dfer train)")
    last_ckpt = load_checkpoint(last_path)
    state = last_ckpt.state or {}
    if not state.get("done"):
        raise CheckpointError(f"{run_dir}: training has not ended (last.pt is not marked done); "
                              "continue it with dfer train --resume")
    cfg = load_config(base=last_ckpt.train_config)
    split = last_ckpt.split
    if fabric is None:
        fabric = make_fabric(cfg)
    if (run_dir / "metrics.json").is_file() and not again:
        fabric.print(f"fold {split['fold']}: already finished ({run_dir / 'metrics.json'})")
        return FoldResult.load(run_dir)
    cfg.data.protocol = split["protocol"]
    fd = load_fold_data(cfg, split["cache"], split["fold"])
    progress = TrainProgress.from_state(state)
    names = fd.class_names

    last_model = checkpoint_model(last_ckpt, cfg, fabric)
    last_test = score_part(last_model, fd.test, cfg, fabric) if fd.test is not None else None
    selected = SelectedCheckpoint(len(progress.history), NO_VALIDATION, None, None)
    calibration = None
    selected_test = last_test
    if fd.val is not None and best_path.is_file():
        best_ckpt = load_checkpoint(best_path)
        selected.epoch, selected.selection = progress.best_epoch, f"best validation {cfg.eval.monitor}"
        best_model = last_model if progress.best_epoch == len(progress.history) else checkpoint_model(
            best_ckpt, cfg, fabric)
        val = score_part(best_model, fd.val, cfg, fabric)
        if best_model is not last_model and fd.test is not None:
            selected_test = score_part(best_model, fd.test, cfg, fabric)
        calibration = _calibrate(best_ckpt, best_path, val, selected_test, fabric, run_dir)
    if progress.history:
        selected.val = progress.history[selected.epoch - 1]
    selected.test = selected_test.report(names) if selected_test is not None else None
    int8 = _export_int8(cfg, best_path, split, fabric)

    result = FoldResult(
        fold=str(split["fold"]), protocol=fd.protocol, class_names=names, split=split, selected=selected,
        last=LastCheckpoint(len(progress.history), last_test.report(names) if last_test is not None else None),
        stopped_early=progress.stopped_early, world_size=fabric.world_size, history=progress.history,
        calibration=calibration, int8=int8, distillation=(state.get("extra_metrics") or {}).get("distillation"),
        peer_best_on_test=_peer_best(progress),
        cost=model_cost(last_model.config, last_ckpt.preprocess))
    if fabric.is_global_zero:
        write_fold_report(run_dir, result)
        write_model_card(best_path if best_path.is_file() else last_path, metrics=result)
        atomic_write_json(run_dir / "metrics.json", result.to_dict())  # last: the fold is finished
    fabric.barrier()
    return result


def _calibrate(best_ckpt, best_path: Path, val, test, fabric, run_dir: Path) -> dict[str, Any]:
    """best.pt's temperature fitted on validation (NLL; kept at 1.0 if it would raise the validation ECE),
    stored in best.pt; ECE on test."""
    t, kept = choose_temperature(val.logits, val.labels)
    summary = calibration_summary(t, (val.logits, val.labels), (test.logits, test.labels) if test else None)
    if kept:
        summary["note"] = kept
    if fabric.is_global_zero:
        best_ckpt.calibration = {k: v for k, v in summary.items() if k != "test"}
        if "test" in summary:
            best_ckpt.calibration["test_ece"] = {k: summary["test"][k] for k in ("clips", "ece_before", "ece_after")}
            plot_reliability(summary, run_dir / "reliability.png")
        save_checkpoint(best_path, best_ckpt)
    fabric.barrier()
    return summary


def _export_int8(cfg: TrainConfig, best: Path, split: dict[str, Any], fabric) -> Int8Outcome | None:
    """best.pt as OpenVINO int8 beside it (dfer.inference.export.export_fold_int8); a refusal or a failure is
    reported, never fatal."""
    dep = cfg.deploy
    if not dep.int8 or not best.is_file():
        return None
    result: Int8Outcome | None = None
    if fabric.is_global_zero:
        result = export_fold_int8(best, split["cache"], calibration_clips_count=dep.calibration_clips,
                                  max_drop=dep.int8_max_drop)
        fabric.print(f"fold {split['fold']}: int8 {result.status}" + (f" ({result.model})" if result.written else ""))
    fabric.barrier()
    return result


def _peer_best(progress: TrainProgress) -> dict[str, Any] | None:
    if progress.peer_best is None:
        return None
    return {**progress.peer_best, "note": "best epoch picked on the test part "
            "(peers' protocol; optimistic, for comparison with the literature only)"}


# -- every fold ----------------------------------------------------------------------------


def run_cv(cfg: TrainConfig, data: str | Path, out: str | Path, *, folds: Sequence[str] | None = None,
           resume: bool = False, callbacks: Sequence[Callback] = (), train: TrainOne = train_fold) -> CVResult:
    """Train and finish every fold (or `folds`) into out/fold_<k>; aggregate into out/metrics.json.
    `train`: how one fold is trained (train_fold; run_distill passes its own, with the fold's teacher)."""
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
        atomic_write_json(out / "metrics.json", cv.to_dict())
        write_cv_report(out, cv, results)
        write_cv_card(out, cv, [out / f"fold_{name}" for name in chosen])
    fabric.barrier()
    return cv


def run_distill(cfg: TrainConfig, data: str | Path, teacher: str | Path, out: str | Path, *,
                folds: list[str] | None = None, resume: bool = False, callbacks: Sequence[Callback] = ()) -> CVResult:
    """Every fold (or `folds`) of a cache distilled, each from its own teacher: `teacher` is a `dfer cv`
    run folder (fold_<k>/best.pt), or one checkpoint when one fold is asked for. Every teacher is checked
    before the first fold trains. Returns the cross-validation summary (out/metrics.json)."""
    protocol, names = fold_names(data, cfg.data.protocol)
    chosen = [str(f) for f in folds] if folds else names
    if not Path(teacher).is_dir() and len(chosen) > 1:
        raise ConfigError(f"{teacher}: one checkpoint teaches one fold; give the teacher's `dfer cv` run folder "
                          f"to distil folds {', '.join(chosen)}")
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise DatasetError(f"{data}: folds {unknown} not in protocol {protocol!r} (folds {names})")
    teachers = {f: teacher_of_fold(teacher, f) for f in chosen}
    for f, path in teachers.items():  # all of them, before any training
        load_teacher(path, data, f, protocol)

    def one_fold(cfg: TrainConfig, data, name, fold_out, **kw) -> FoldResult:
        return distill_fold(cfg, data, name, fold_out, teacher=teachers[str(name)], **kw)

    return run_cv(cfg, data, out, folds=chosen, resume=resume, callbacks=callbacks, train=one_fold)


def run_ablation(base: TrainConfig, data: str | Path, out: str | Path, *, variants: list[str] | None = None,
                 folds: list[str] | None = None, resume: bool = True, log=print) -> dict[str, Any]:
    """Cross-validate every variant (dfer.engine.ablate) into out/<variant>; write out/metrics.json and
    out/report.md."""
    out = Path(out)
    names = parse_variants(",".join(variants) if variants else None)
    results = {}
    for k, name in enumerate(names, start=1):
        log(f"== variant {name} ({k}/{len(names)}): {VARIANTS[name][0]} ==")
        cfg = load_config(base=base.to_dict(), overrides=VARIANTS[name][1])
        cv = run_cv(cfg, data, out / name, folds=folds, resume=resume)
        results[name] = variant_result(name, cv, FoldResult.load(out / name / f"fold_{cv.folds[0]}"))
    summary = {"cache": str(data), "base_config": base.to_dict(), "variants": results, "paired_vs_full": paired(results)}
    atomic_write_json(out / "metrics.json", summary)
    atomic_write_text(out / "report.md", ablation_report(summary))
    return summary
