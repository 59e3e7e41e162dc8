"""Training one fold: Adam + the centers' SGD, validation-only model selection, resumable checkpoints.

Training ends at the selected checkpoint (best.pt) and a last.pt marked done; scoring the test part,
calibration, the int8 export, metrics.json, the report and the card are the finishing step
(dfer.runs.finish_fold), which reads only what this module left in the run folder.

Devices, precision and multi-process data parallelism are Lightning Fabric's (DDP over gloo on
CPU, nccl on GPU); this module owns the loop. Randomness comes from (seed, epoch, index) for the
data and from torch's RNG (saved in every checkpoint) for the network, so a run killed at any
point and resumed from `last.pt` ends with the same weights and metrics as an uninterrupted one.

Run folder (one fold):

    config.yaml   resolved TrainConfig          split.json   the fold's clip ids (train/val/test)
    last.pt       latest state, for --resume    best.pt      the checkpoint selected on validation
    best-int8.xml OpenVINO int8 of best.pt (+ .bin), when the accuracy rule accepts it
    log.csv       per-epoch metrics             tb/          TensorBoard scalars
    metrics.json  test metrics of the selected and the last checkpoint (+ curves, cost)
    report.md, confusion_*.png, curves.png
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfer.checkpoint import Checkpoint, load_checkpoint, make_checkpoint, save_checkpoint
from dfer.data.cache import ClipCache
from dfer.data.dataset import ClipDataset, make_loader
from dfer.data.splits import Fold, Splits
from dfer.data.transforms import ClipTransformConfig
from dfer.engine.config import TrainConfig, dump_yaml
from dfer.engine.fabric import autocast_dtype, make_fabric, resolve_precision
from dfer.engine.loop import EpochStats, StepOptions, lr_schedule, predict_dataset, train_one_epoch
from dfer.errors import CheckpointError, DatasetError
from dfer.files import atomic_write_json, atomic_write_text
from dfer.losses import DferLoss
from dfer.models import build_from_config
from dfer.preprocess import Preprocess

Callback = Callable[[str, dict[str, Any]], None]  # (event, info): "step_end" | "epoch_end"


# -- building blocks -----------------------------------------------------------------------


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Inverse class frequency, mean 1 over present classes; absent classes get 0."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def is_better(value: float, best: float | None, monitor: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if monitor == "loss" else value > best


@dataclass
class FoldData:
    cache: ClipCache
    class_names: list[str]
    fold: Fold
    protocol: str
    train: ClipDataset
    val: ClipDataset | None
    test: ClipDataset | None


def transform_config(cfg: TrainConfig) -> ClipTransformConfig:
    d = cfg.data
    j = d.color_jitter
    return ClipTransformConfig(size=d.size, scale=tuple(d.crop_scale), flip=d.flip, brightness=j, contrast=j, saturation=j)


def load_fold_data(cfg: TrainConfig, data: str | Path, fold: str | int) -> FoldData:
    cache = ClipCache(data)
    meta = cache.meta
    splits = Splits.load(data)
    protocol = cfg.data.protocol or splits.default
    f = splits.fold(fold, protocol)
    if not f.train:
        raise DatasetError(f"{data}: fold {fold} of protocol {protocol!r} has no training clips")
    tcfg = transform_config(cfg)
    seed = cfg.runtime.seed
    train = ClipDataset(cache, f.train, train=cfg.data.augment, num_frames=cfg.data.num_frames,
                        transform_config=tcfg, seed=seed)

    def evalset(ids):
        return ClipDataset(cache, ids, num_frames=cfg.data.num_frames, transform_config=tcfg, seed=seed) if ids else None

    return FoldData(cache, list(meta["class_names"]), f, protocol, train, evalset(f.val), evalset(f.test))


# -- the loop ------------------------------------------------------------------------------
@dataclass
class TrainProgress:
    """Where a fold's training stands between steps: saved in last.pt as a whole and restored as a whole
    (the keys of the checkpoint's `state`, beside the optimizers, the centers and the RNG)."""

    history: list[dict[str, Any]] = field(default_factory=list)  # one row per finished epoch
    best: float | None = None  # the best validation value of the monitored metric
    best_epoch: int = 0  # 1-based; 0: none yet
    bad_epochs: int = 0  # epochs since the last improvement (early stopping)
    global_step: int = 0
    running: EpochStats = field(default_factory=EpochStats)  # the current epoch's sums, for a mid-epoch resume
    peer_best: dict[str, Any] | None = None  # best epoch on test (--peer-best-on-test only)
    stopped_early: bool = False  # ended by the patience rule, before the last epoch

    def to_state(self) -> dict[str, Any]:
        """Every field, by its name (a new field is saved and restored with no other change)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "running": self.running.to_dict()}

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> TrainProgress:
        """From a checkpoint's state; a field an older last.pt lacks keeps its default."""
        kept = {f.name: st[f.name] for f in fields(cls) if f.name in st}
        return cls(**{**kept, "history": list(st["history"]), "running": EpochStats(**st["running"])})


class FoldTrainer:
    """Trains one fold into `out` up to its selected checkpoint; `run()` returns where training ended."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: str | Path,
        fold: str | int,
        out: str | Path,
        *,
        resume: bool = False,
        fabric=None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.data_path = str(data)
        self.fold_name = str(fold)
        self.out = Path(out)
        self.resume = resume
        self.callbacks = list(callbacks)
        self.fd = load_fold_data(cfg, data, fold)
        self.cfg = copy.deepcopy(cfg)  # the caller's config stays as it was
        self.cfg.model.num_classes = len(self.fd.class_names)
        meta = self.fd.cache.meta
        durations = [r.src_frames / r.fps for r in self.fd.train.rows if r.fps > 0 and r.src_frames > 0]
        self.preprocess = Preprocess(num_frames=cfg.data.num_frames, size=cfg.data.size, face=dict(meta.get("face", {})),
                                     clip_seconds=round(float(np.median(durations)), 3) if durations else 0.0)
        self.split_info = {"cache": self.data_path, "dataset": meta.get("dataset", ""), "protocol": self.fd.protocol,
                           "fold": self.fold_name, "sha256": self.fd.fold.digest,
                           "synthetic": bool(meta.get("synthetic", False)),
                           "sizes": {k: len(v) for k, v in self.fd.fold.ids().items()}}
        self.fabric = fabric

    # checkpoint helpers ------------------------------------------------------------------
    def _ckpt(self, metrics: dict[str, Any], state: dict[str, Any] | None = None) -> Checkpoint:
        return make_checkpoint(model=self.model, class_names=self.fd.class_names, preprocess=self.preprocess,
                               train_config=self.cfg.to_dict(), split=self.split_info, metrics=metrics, state=state)

    def _state(self, epoch: int, next_batch: int) -> dict[str, Any]:
        state = {
            "epoch": epoch, "next_batch": next_batch, **self.progress.to_state(),
            "optimizer": self.opt.state_dict(), "center_optimizer": self.center_opt.state_dict(),
            "centers": self.crit.center.centers.detach().cpu(), "rng_cpu": torch.get_rng_state(), "done": False,
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state()
        return state

    def _save_last(self, epoch: int, next_batch: int, done: bool = False) -> None:
        if self.fabric.is_global_zero:
            state = self._state(epoch, next_batch)
            state["done"] = done
            if done:  # what the finishing step adds to metrics.json (a distillation's teacher)
                state["extra_metrics"] = self._extra_metrics()
            save_checkpoint(self.out / "last.pt", self._ckpt(self._last_metrics(), state))
        self.fabric.barrier()

    def _last_metrics(self) -> dict[str, Any]:
        history = self.progress.history
        return {"epoch": len(history), **({"val": history[-1]} if history else {})}

    # setup ------------------------------------------------------------------------------
    def _resume_checkpoint(self) -> Checkpoint | None:
        last = self.out / "last.pt"
        if not last.exists():
            return None
        if not self.resume:
            raise CheckpointError(f"{self.out}: holds a run already (last.pt); resume it or choose another output folder")
        ckpt = load_checkpoint(last)
        if ckpt.split.get("sha256") != self.split_info["sha256"]:
            raise CheckpointError(f"{last}: was trained on a different split than fold {self.fold_name} of "
                                  f"{self.data_path}; refusing to resume")
        return ckpt

    def _build(self, resume_ckpt: Checkpoint | None) -> None:
        """Model, optimizers, loss, loader and schedule, on the fabric's devices."""
        cfg, fabric = self.cfg, self.fabric
        fabric.seed_everything(cfg.runtime.seed, verbose=False)
        self.model = build_from_config(cfg.model, weights=None if resume_ckpt else cfg.weights)
        if resume_ckpt:
            self.model.load_state_dict(resume_ckpt.model.state_dict)
        if cfg.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        net = torch.compile(self.model) if cfg.runtime.compile else self.model
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self.net, self.opt = fabric.setup(self._training_net(net), opt)
        k = len(self.fd.class_names)
        cw = class_weights(self.fd.train.labels, k) if cfg.loss.class_weighted else None
        self.crit = self._training_loss(DferLoss(k, cfg.model.embed_dim, lam=cfg.loss.lam, class_weights=cw,
                                                 label_smoothing=cfg.loss.label_smoothing).to(fabric.device))
        self.center_opt = self.crit.center.center_optimizer(lr=cfg.loss.center_lr)
        self.loader = make_loader(self.fd.train, batch_size=cfg.data.batch_size, workers=cfg.data.workers, shuffle=True,
                                  balanced=cfg.data.balanced, drop_last=len(self.fd.train) > cfg.data.batch_size,
                                  seed=cfg.runtime.seed, rank=fabric.global_rank, world_size=fabric.world_size)
        self.steps_per_epoch = len(self.loader.sampler)
        o = cfg.optim
        self.lr_at = lr_schedule(o.lr, o.schedule, self.steps_per_epoch * o.epochs, self.steps_per_epoch,
                                 warmup_epochs=o.warmup_epochs, step_epochs=o.step_epochs, step_gamma=o.step_gamma)
        self.progress = TrainProgress()

    # What a subclass (dfer.engine.distill) changes: the module trained, its loss, extra metrics.
    def _training_net(self, net: torch.nn.Module) -> torch.nn.Module:
        return net

    def _training_loss(self, base: torch.nn.Module) -> torch.nn.Module:
        return base

    def _extra_metrics(self) -> dict[str, Any]:
        return {}

    def _restore(self, st: dict[str, Any]) -> None:
        self.opt.load_state_dict(st["optimizer"])
        self.center_opt.load_state_dict(st["center_optimizer"])
        with torch.no_grad():
            self.crit.center.centers.copy_(st["centers"].to(self.fabric.device))
        self.progress = TrainProgress.from_state(st)
        torch.set_rng_state(st["rng_cpu"])
        if "rng_cuda" in st and torch.cuda.is_available():
            torch.cuda.set_rng_state(st["rng_cuda"])

    def _setup(self) -> dict[str, Any] | None:
        """Build everything; returns the resume state when continuing a run."""
        cfg = self.cfg
        if self.fabric is None:
            self.fabric = make_fabric(cfg)
        if cfg.runtime.threads > 0:
            torch.set_num_threads(cfg.runtime.threads)
        resume_ckpt = self._resume_checkpoint()
        self._build(resume_ckpt)
        if self.fabric.is_global_zero:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", dump_yaml(cfg))
            atomic_write_json(self.out / "split.json", {**self.split_info, **self.fd.fold.ids()})
        self.fabric.barrier()
        if resume_ckpt is None:
            return None
        self._restore(resume_ckpt.state)
        return resume_ckpt.state

    # main -------------------------------------------------------------------------------
    def run(self) -> TrainProgress:
        """Train (or resume) to the end: best.pt selected, last.pt marked done. A finished run is left as it is."""
        st = self._setup()
        cfg, fabric = self.cfg, self.fabric
        if st and st.get("done"):
            return self.progress
        start_epoch, skip = (st["epoch"], st["next_batch"]) if st else (0, 0)
        writer = self._tensorboard()
        for epoch in range(start_epoch, cfg.optim.epochs):
            self._train_epoch(epoch, skip if epoch == start_epoch else 0, writer)
            row = self._end_epoch(epoch, writer)
            self._emit("epoch_end", {"epoch": epoch, "row": row})
            if cfg.eval.patience and self.progress.bad_epochs >= cfg.eval.patience:
                self.progress.stopped_early = True
                fabric.print(f"early stop: no validation {cfg.eval.monitor} gain in {cfg.eval.patience} epochs")
                break
        if writer is not None:
            writer.close()
        self._save_last(len(self.progress.history), 0, done=True)
        return self.progress

    def _emit(self, event: str, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb(event, info)

    def _tensorboard(self):
        if not (self.cfg.runtime.tensorboard and self.fabric.is_global_zero):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: CSV logs still written
            return None
        return SummaryWriter(str(self.out / "tb"))

    def _train_epoch(self, epoch: int, skip: int, writer) -> None:
        cfg, fabric = self.cfg, self.fabric
        self.loader.sampler.set_epoch(epoch, skip_batches=skip)
        if skip == 0:
            self.progress.running = EpochStats()

        def on_step(batch_idx: int, global_step: int, loss: float) -> None:
            self.progress.global_step = global_step
            if writer is not None and global_step % 10 == 0:
                writer.add_scalar("train/loss_step", loss, global_step)
                writer.add_scalar("train/lr", self.lr_at(global_step - 1), global_step)
            if cfg.runtime.checkpoint_every and global_step % cfg.runtime.checkpoint_every == 0:
                self._save_last(epoch, batch_idx + 1)
            self._emit("step_end", {"epoch": epoch, "batch": batch_idx, "global_step": global_step})

        cpu_bf16 = fabric.device.type == "cpu" and "bf16" in resolve_precision(cfg)
        hint = (" bf16 autocast on CPU is known to give wrong conv3d weight gradients when a temporal size is 2; "
                "use precision 32-true" if cpu_bf16 else " lower the learning rate or use precision 32-true")
        opts = StepOptions(grad_clip=cfg.optim.grad_clip, channels_last=cfg.runtime.channels_last,
                           progress=cfg.runtime.progress and fabric.is_global_zero, on_step=on_step, hint=hint,
                           desc=f"fold {self.fold_name} epoch {epoch + 1}/{cfg.optim.epochs}")
        self.progress.running, self.progress.global_step = train_one_epoch(
            self.net, self.crit, self.opt, self.center_opt, self.loader, fabric, self.lr_at,
            global_step=self.progress.global_step, first_batch=skip, num_batches=self.steps_per_epoch,
            stats=self.progress.running, options=opts)

    def _score(self, ds: ClipDataset | None) -> dict[str, Any] | None:
        return None if ds is None else self._predictions(ds).report(self.fd.class_names)

    def _end_epoch(self, epoch: int, writer) -> dict[str, Any]:
        cfg, fabric = self.cfg, self.fabric
        r = self.progress.running
        totals = fabric.all_reduce(torch.tensor([r.loss, r.ce, r.sc, r.correct, r.seen],
                                                dtype=torch.float64, device=fabric.device), reduce_op="sum")
        loss, ce, sc, correct, seen = totals.tolist()
        val = self._score(self.fd.val)
        row = {
            "epoch": epoch + 1, "lr": self.lr_at(max(0, self.progress.global_step - 1)),
            "train_loss": loss / max(seen, 1), "train_ce": ce / max(seen, 1), "train_sc": sc / max(seen, 1),
            "train_acc": correct / max(seen, 1), "train_clips_per_s": seen / max(r.seconds, 1e-9),
            "val_loss": val["loss"] if val else None, "val_war": val["war"] if val else None,
            "val_uar": val["uar"] if val else None,
        }
        if cfg.eval.peer_best_on_test:
            self._peer_test(row, epoch)
        self.progress.history.append(row)
        monitor = row.get(f"val_{cfg.eval.monitor}")
        improved = is_better(monitor, self.progress.best, cfg.eval.monitor)
        if improved:
            self.progress.best, self.progress.best_epoch, self.progress.bad_epochs = monitor, epoch + 1, 0
            if fabric.is_global_zero:
                selected = {"epoch": epoch + 1, "val": val, "selected_on": f"val_{cfg.eval.monitor}"}
                save_checkpoint(self.out / "best.pt", self._ckpt(selected))
        else:
            self.progress.bad_epochs += 1
        if fabric.is_global_zero:
            _write_log(self.out / "log.csv", self.progress.history)
            if writer is not None:
                for key, v in row.items():
                    if key != "epoch" and v is not None:
                        writer.add_scalar(key.replace("_", "/", 1), v, epoch + 1)
        fabric.print(_epoch_line(self.fold_name, row, improved))
        self._save_last(epoch + 1, 0)
        return row

    def _peer_test(self, row: dict[str, Any], epoch: int) -> None:
        """The peers' optimistic protocol, reported beside ours: the test part scored every epoch."""
        test = self._score(self.fd.test)
        if test:
            row["test_war"], row["test_uar"] = test["war"], test["uar"]
            if self.progress.peer_best is None or test["war"] > self.progress.peer_best["war"]:
                self.progress.peer_best = {"epoch": epoch + 1, "war": test["war"], "uar": test["uar"]}

    def _predictions(self, ds: ClipDataset):
        # The bare module, not the DDP wrapper: each process scores its own share, no collective in forward.
        return score_part(self.model, ds, self.cfg, self.fabric)


def score_part(model: torch.nn.Module, ds: ClipDataset, cfg: TrainConfig, fabric):
    """Logits of every clip of a part, as training scores it (evaluation batch, precision, memory format)."""
    return predict_dataset(model, ds, batch_size=cfg.data.eval_batch_size or cfg.data.batch_size, workers=0,
                           channels_last=cfg.runtime.channels_last, fabric=fabric,
                           autocast_dtype=autocast_dtype(resolve_precision(cfg)))


def checkpoint_model(ckpt: Checkpoint, cfg: TrainConfig, fabric) -> torch.nn.Module:
    """The network with a checkpoint's weights, placed as training places it (the fabric's device and
    precision, the run's memory format); scored with score_part."""
    model = build_from_config(cfg.model, weights=None)
    model.load_state_dict(ckpt.model.state_dict)
    if cfg.runtime.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return fabric.setup_module(model).module


def _epoch_line(fold: str, row: dict[str, Any], improved: bool) -> str:
    def f(v):
        return "-" if v is None else f"{v:.4f}"

    mark = " *" if improved else ""
    return (f"fold {fold} epoch {row['epoch']}: loss {row['train_loss']:.4f} acc {row['train_acc']:.3f} "
            f"| val WAR {f(row['val_war'])} UAR {f(row['val_uar'])} loss {f(row['val_loss'])}"
            f" | {row['train_clips_per_s']:.1f} clips/s{mark}")


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    import csv
    import io

    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, buf.getvalue())
