"""Training one fold: Adam + the centers' SGD, validation-only model selection, resumable checkpoints.

Devices, precision and multi-process data parallelism are Lightning Fabric's (DDP over gloo on
CPU, nccl on GPU); this module owns the loop. Randomness comes from (seed, epoch, index) for the
data and from torch's RNG (saved in every checkpoint) for the network, so a run killed at any
point and resumed from `last.pt` ends with the same weights and metrics as an uninterrupted one.

Run folder (one fold):

    config.yaml   resolved TrainConfig          split.json   the fold's clip ids (train/val/test)
    last.pt       latest state, for --resume    best.pt      the checkpoint selected on validation
    log.csv       per-epoch metrics             tb/          TensorBoard scalars
    metrics.json  test metrics of the selected and the last checkpoint (+ curves, cost)
    report.md, confusion_*.png, curves.png
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from dfer.checkpoint import Preprocess, load_checkpoint, make_checkpoint, save_checkpoint
from dfer.data.cache import ClipCache
from dfer.files import atomic_write_json, atomic_write_text, text_digest
from dfer.data.dataset import ClipDataset, make_loader
from dfer.data.prepare import load_splits
from dfer.data.splits import get_fold
from dfer.data.transforms import ClipTransformConfig
from dfer.engine.config import TrainConfig, dump_yaml
from dfer.engine.evaluate import Predictions, predict_dataset
from dfer.errors import CheckpointError, DatasetError, TrainingError
from dfer.losses import DferLoss
from dfer.models import build_from_config

Callback = Callable[[str, dict[str, Any]], None]  # (event, info): "step_end" | "epoch_end"


# -- building blocks -----------------------------------------------------------------------
def make_fabric(cfg: TrainConfig):
    """A launched Lightning Fabric for the runtime settings (one process per device)."""
    from lightning_fabric import Fabric

    rt = cfg.runtime
    accelerator = "cuda" if _use_cuda(cfg) else "cpu"
    precision = resolve_precision(cfg)
    strategy = rt.strategy
    if strategy == "auto":
        strategy = "ddp" if rt.devices * rt.num_nodes > 1 else "auto"
    fabric = Fabric(accelerator=accelerator, devices=rt.devices, num_nodes=rt.num_nodes, strategy=strategy,
                    precision=precision)
    fabric.launch()
    return fabric


def _use_cuda(cfg: TrainConfig) -> bool:
    return torch.cuda.is_available() and cfg.runtime.accelerator in ("auto", "cuda", "gpu")


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16 or AMX), where bf16 autocast pays."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:  # private helpers; absent on other builds
        return False


def resolve_precision(cfg: TrainConfig) -> str:
    """`auto`: bf16 autocast on a GPU that has it (fp16 otherwise), full fp32 on CPU."""
    if cfg.runtime.precision != "auto":
        return cfg.runtime.precision
    if _use_cuda(cfg):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


def lr_at(step: int, total_steps: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Learning rate at optimizer step `step` (per-iteration schedule, exact on resume)."""
    o = cfg.optim
    warm = int(round(o.warmup_epochs * steps_per_epoch))
    if step < warm:
        return o.lr * (step + 1) / warm
    if o.schedule == "cosine":
        span = max(1, total_steps - warm)
        return 0.5 * o.lr * (1 + math.cos(math.pi * min(1.0, (step - warm) / span)))
    if o.schedule == "step":
        return o.lr * o.step_gamma ** ((step // max(1, steps_per_epoch)) // max(1, o.step_epochs))
    return o.lr


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Inverse class frequency, mean 1 over present classes; absent classes get 0."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def split_digest(fold: dict[str, list[str]]) -> str:
    text = json.dumps({k: fold.get(k, []) for k in ("train", "val", "test")}, sort_keys=True)
    return text_digest(text)


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
    fold: dict[str, list[str]]
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
    splits = load_splits(data)
    protocol = cfg.data.protocol or splits["default"]
    f = get_fold(splits, fold, protocol)
    if not f["train"]:
        raise DatasetError(f"{data}: fold {fold} of protocol {protocol!r} has no training clips")
    tcfg = transform_config(cfg)
    seed = cfg.runtime.seed
    train = ClipDataset(cache, f["train"], train=cfg.data.augment, num_frames=cfg.data.num_frames,
                        transform_config=tcfg, seed=seed)

    def evalset(ids):
        return ClipDataset(cache, ids, num_frames=cfg.data.num_frames, transform_config=tcfg, seed=seed) if ids else None

    return FoldData(cache, list(meta["class_names"]), f, protocol, train, evalset(f.get("val")), evalset(f.get("test")))


# -- the loop ------------------------------------------------------------------------------
class FoldTrainer:
    """Trains one fold into `out`; `run()` returns the fold's metrics dict."""

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
        self.cfg = cfg
        self.data_path = str(data)
        self.fold_name = str(fold)
        self.out = Path(out)
        self.resume = resume
        self.callbacks = list(callbacks)
        self.fd = load_fold_data(cfg, data, fold)
        cfg.model.num_classes = len(self.fd.class_names)
        meta = self.fd.cache.meta
        durations = [r.src_frames / r.fps for r in self.fd.train.rows if r.fps > 0 and r.src_frames > 0]
        self.preprocess = Preprocess(num_frames=cfg.data.num_frames, size=cfg.data.size, face=dict(meta.get("face", {})),
                                     clip_seconds=round(float(np.median(durations)), 3) if durations else 0.0)
        self.split_info = {"cache": self.data_path, "dataset": meta.get("dataset", ""), "protocol": self.fd.protocol,
                           "fold": self.fold_name, "sha256": split_digest(self.fd.fold),
                           "sizes": {k: len(self.fd.fold.get(k, [])) for k in ("train", "val", "test")}}
        self.fabric = fabric

    # checkpoint helpers ------------------------------------------------------------------
    def _ckpt(self, metrics: dict[str, Any], state: dict[str, Any] | None = None) -> dict[str, Any]:
        return make_checkpoint(model=self.model, class_names=self.fd.class_names, preprocess=self.preprocess,
                               train_config=self.cfg.to_dict(), split=self.split_info, metrics=metrics, state=state)

    def _state(self, epoch: int, next_batch: int) -> dict[str, Any]:
        state = {
            "epoch": epoch, "next_batch": next_batch, "global_step": self.global_step,
            "optimizer": self.opt.state_dict(), "center_optimizer": self.center_opt.state_dict(),
            "centers": self.crit.center.centers.detach().cpu(), "rng_cpu": torch.get_rng_state(),
            "history": self.history, "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "running": dict(self.running), "peer_best": self.peer_best, "done": False,
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state()
        return state

    def _save_last(self, epoch: int, next_batch: int, done: bool = False) -> None:
        if self.fabric.is_global_zero:
            state = self._state(epoch, next_batch)
            state["done"] = done
            save_checkpoint(self.out / "last.pt", self._ckpt(self._last_metrics(), state))
        self.fabric.barrier()

    def _last_metrics(self) -> dict[str, Any]:
        return {"epoch": len(self.history), **({"val": self.history[-1]} if self.history else {})}

    # setup ------------------------------------------------------------------------------
    def _setup(self) -> dict[str, Any] | None:
        cfg = self.cfg
        if self.fabric is None:
            self.fabric = make_fabric(cfg)
        fabric = self.fabric
        if cfg.runtime.threads > 0:
            torch.set_num_threads(cfg.runtime.threads)
        last = self.out / "last.pt"
        resume_ckpt = None
        if last.exists():
            if not self.resume:
                raise CheckpointError(f"{self.out}: holds a run already (last.pt); pass --resume to continue it "
                                      "or choose another --out")
            resume_ckpt = load_checkpoint(last)
            if resume_ckpt.get("split", {}).get("sha256") != self.split_info["sha256"]:
                raise CheckpointError(f"{last}: was trained on a different split than fold {self.fold_name} of "
                                      f"{self.data_path}; refusing to resume")
        fabric.seed_everything(cfg.runtime.seed, verbose=False)
        self.model = build_from_config(cfg.model, weights=None if resume_ckpt else cfg.weights)
        if resume_ckpt:
            self.model.load_state_dict(resume_ckpt["model"]["state_dict"])
        if cfg.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        net = torch.compile(self.model) if cfg.runtime.compile else self.model
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self.net, self.opt = fabric.setup(net, opt)
        k = len(self.fd.class_names)
        cw = class_weights(self.fd.train.labels, k) if cfg.loss.class_weighted else None
        self.crit = DferLoss(k, cfg.model.embed_dim, lam=cfg.loss.lam, class_weights=cw,
                             label_smoothing=cfg.loss.label_smoothing).to(fabric.device)
        self.center_opt = self.crit.center.center_optimizer(lr=cfg.loss.center_lr)
        self.loader = make_loader(self.fd.train, batch_size=cfg.data.batch_size, workers=cfg.data.workers,
                                  shuffle=True, balanced=cfg.data.balanced, drop_last=len(self.fd.train) > cfg.data.batch_size,
                                  seed=cfg.runtime.seed, rank=fabric.global_rank, world_size=fabric.world_size)
        self.steps_per_epoch = len(self.loader.sampler)
        self.total_steps = self.steps_per_epoch * cfg.optim.epochs
        self.history: list[dict[str, Any]] = []
        self.best, self.best_epoch, self.bad_epochs, self.global_step = None, 0, 0, 0
        self.running = _zero_running()
        self.peer_best: dict[str, Any] | None = None
        if fabric.is_global_zero:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", dump_yaml(cfg))
            atomic_write_json(self.out / "split.json", {**self.split_info, **{k: self.fd.fold.get(k, []) for k in ("train", "val", "test")}})
        fabric.barrier()
        if resume_ckpt:
            st = resume_ckpt["state"]
            self.opt.load_state_dict(st["optimizer"])
            self.center_opt.load_state_dict(st["center_optimizer"])
            with torch.no_grad():
                self.crit.center.centers.copy_(st["centers"].to(fabric.device))
            self.history, self.best, self.best_epoch = list(st["history"]), st["best"], st["best_epoch"]
            self.bad_epochs, self.global_step = st["bad_epochs"], st["global_step"]
            self.running, self.peer_best = dict(st["running"]), st.get("peer_best")
            torch.set_rng_state(st["rng_cpu"])
            if "rng_cuda" in st and torch.cuda.is_available():
                torch.cuda.set_rng_state(st["rng_cuda"])
            return st
        return None

    # main -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        st = self._setup()
        cfg, fabric = self.cfg, self.fabric
        if st and st.get("done") and (self.out / "metrics.json").is_file():
            fabric.print(f"fold {self.fold_name}: already finished ({self.out}/metrics.json)")
            return json.loads((self.out / "metrics.json").read_text())
        start_epoch, skip = (st["epoch"], st["next_batch"]) if st else (0, 0)
        writer = self._tensorboard()
        stopped_early = False
        for epoch in range(start_epoch, cfg.optim.epochs):
            if st and st.get("done"):
                break
            self._train_epoch(epoch, skip if epoch == start_epoch else 0, writer)
            row = self._end_epoch(epoch, writer)
            self._emit("epoch_end", {"epoch": epoch, "row": row})
            if cfg.eval.patience and self.bad_epochs >= cfg.eval.patience:
                stopped_early = True
                fabric.print(f"early stop: no validation {cfg.eval.monitor} gain in {cfg.eval.patience} epochs")
                break
        if writer is not None:
            writer.close()
        metrics = self._final(stopped_early)
        self._save_last(len(self.history), 0, done=True)
        return metrics

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
            self.running = _zero_running()
        self.net.train()
        from tqdm.auto import tqdm

        import sys

        # A live bar on a terminal; in a log file, a line every 30 s instead of one per batch.
        bar = tqdm(total=self.steps_per_epoch, initial=skip, desc=f"fold {self.fold_name} epoch {epoch + 1}/{cfg.optim.epochs}",
                   unit="batch", disable=not (cfg.runtime.progress and fabric.is_global_zero), leave=False,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)
        t_last = time.perf_counter()
        for batch_idx, (x, y, _) in enumerate(self.loader, start=skip):
            x, y = fabric.to_device(x), fabric.to_device(y)
            if cfg.runtime.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            lr = lr_at(self.global_step, self.total_steps, self.steps_per_epoch, cfg)
            for g in self.opt.param_groups:
                g["lr"] = lr
            out = self.net(x)  # logits (B, K), embedding (B, D), weights (B, D)
            total, ce, sc = self.crit(out.logits, out.embedding.float(), out.weights.float(), y)
            if not torch.isfinite(total):
                hint = (" bf16 autocast on CPU is known to give wrong conv3d weight gradients when a temporal size "
                        "is 2; use --precision 32-true" if self.fabric.device.type == "cpu" and "bf16" in resolve_precision(cfg) else
                        " lower the learning rate (--lr) or use --precision 32-true")
                raise TrainingError(f"fold {self.fold_name}: the loss became {float(total)} at epoch {epoch + 1}, step "
                                    f"{batch_idx + 1}; last.pt keeps the last good state.{hint}")
            self.opt.zero_grad(set_to_none=True)
            self.center_opt.zero_grad(set_to_none=True)
            fabric.backward(total)
            if fabric.world_size > 1:  # centers live outside DDP: average their update over processes
                self.crit.center.centers.grad = fabric.all_reduce(self.crit.center.centers.grad, reduce_op="mean")
            if cfg.optim.grad_clip > 0:
                fabric.clip_gradients(self.net, self.opt, max_norm=cfg.optim.grad_clip)
            self.opt.step()
            self.center_opt.step()
            self.global_step += 1
            n = y.shape[0]
            now = time.perf_counter()
            r = self.running
            r["loss"] += float(total.detach()) * n
            r["ce"] += float(ce) * n
            r["sc"] += float(sc) * n
            r["correct"] += int((out.logits.argmax(1) == y).sum())
            r["seen"] += n
            r["seconds"] += now - t_last
            t_last = now
            bar.update(1)
            bar.set_postfix(loss=f"{r['loss'] / r['seen']:.3f}", clips_s=f"{r['seen'] * fabric.world_size / max(r['seconds'], 1e-9):.1f}")
            if writer is not None and self.global_step % 10 == 0:
                writer.add_scalar("train/loss_step", float(total.detach()), self.global_step)
                writer.add_scalar("train/lr", lr, self.global_step)
            if cfg.runtime.checkpoint_every and self.global_step % cfg.runtime.checkpoint_every == 0:
                self._save_last(epoch, batch_idx + 1)
            self._emit("step_end", {"epoch": epoch, "batch": batch_idx, "global_step": self.global_step})
        bar.close()

    def _score(self, ds: ClipDataset | None) -> tuple[dict[str, Any] | None, Predictions | None]:
        if ds is None:
            return None, None
        cfg = self.cfg
        # The bare module, not the DDP wrapper: each process scores its own share, no collective in forward.
        preds = predict_dataset(self.model, ds, batch_size=cfg.data.eval_batch_size or cfg.data.batch_size,
                                workers=0, channels_last=cfg.runtime.channels_last, fabric=self.fabric,
                                autocast_dtype=autocast_dtype(resolve_precision(cfg)))
        return preds.report(self.fd.class_names), preds

    def _end_epoch(self, epoch: int, writer) -> dict[str, Any]:
        cfg, fabric = self.cfg, self.fabric
        r = self.running
        totals = fabric.all_reduce(torch.tensor([r["loss"], r["ce"], r["sc"], r["correct"], r["seen"]],
                                                dtype=torch.float64, device=fabric.device), reduce_op="sum")
        loss, ce, sc, correct, seen = totals.tolist()
        val, _ = self._score(self.fd.val)
        row = {
            "epoch": epoch + 1, "lr": lr_at(max(0, self.global_step - 1), self.total_steps, self.steps_per_epoch, cfg),
            "train_loss": loss / max(seen, 1), "train_ce": ce / max(seen, 1), "train_sc": sc / max(seen, 1),
            "train_acc": correct / max(seen, 1), "train_clips_per_s": seen / max(r["seconds"], 1e-9),
            "val_loss": val["loss"] if val else None, "val_war": val["war"] if val else None,
            "val_uar": val["uar"] if val else None,
        }
        if cfg.eval.peer_best_on_test:
            test, _ = self._score(self.fd.test)
            if test:
                row["test_war"], row["test_uar"] = test["war"], test["uar"]
                if self.peer_best is None or test["war"] > self.peer_best["war"]:
                    self.peer_best = {"epoch": epoch + 1, "war": test["war"], "uar": test["uar"]}
        self.history.append(row)
        monitor = row.get(f"val_{cfg.eval.monitor}")
        improved = is_better(monitor, self.best, cfg.eval.monitor)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = monitor, epoch + 1, 0
            if fabric.is_global_zero:
                save_checkpoint(self.out / "best.pt", self._ckpt({"epoch": epoch + 1, "val": val, "selected_on": f"val_{cfg.eval.monitor}"}))
        else:
            self.bad_epochs += 1
        if fabric.is_global_zero:
            _write_log(self.out / "log.csv", self.history)
            if writer is not None:
                for key, v in row.items():
                    if key != "epoch" and v is not None:
                        writer.add_scalar(key.replace("_", "/", 1), v, epoch + 1)
        fabric.print(_epoch_line(self.fold_name, row, improved, cfg.eval.monitor))
        self._save_last(epoch + 1, 0)
        return row

    def _final(self, stopped_early: bool) -> dict[str, Any]:
        """Test metrics of the selected (best.pt) and of the last model; metrics.json and report."""
        fabric = self.fabric
        names = self.fd.class_names
        last_test, _ = self._score(self.fd.test)
        selected_test, selected_epoch, selection = last_test, len(self.history), "last epoch (no validation part)"
        best = self.out / "best.pt"
        if self.fd.val is not None and best.is_file() and self.best_epoch == len(self.history):
            selected_epoch, selection = self.best_epoch, f"best validation {self.cfg.eval.monitor}"  # the same weights
        elif self.fd.val is not None and best.is_file():
            state = load_checkpoint(best)["model"]["state_dict"]
            current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(state)
            selected_test, _ = self._score(self.fd.test)
            self.model.load_state_dict(current)
            selected_epoch, selection = self.best_epoch, f"best validation {self.cfg.eval.monitor}"
        metrics = {
            "fold": self.fold_name, "protocol": self.fd.protocol, "class_names": names, "split": self.split_info,
            "selected": {"epoch": selected_epoch, "selection": selection,
                         "val": self.history[selected_epoch - 1] if self.history else None, "test": selected_test},
            "last": {"epoch": len(self.history), "test": last_test},
            "stopped_early": stopped_early, "world_size": fabric.world_size, "history": self.history,
        }
        if self.peer_best is not None:
            metrics["peer_best_on_test"] = {**self.peer_best, "note": "best epoch picked on the test part "
                                            "(peers' protocol; optimistic, for comparison with the literature only)"}
        if fabric.is_global_zero:
            from dfer.engine.report import model_cost, write_fold_report

            metrics["cost"] = model_cost(self.model.config, self.preprocess)
            atomic_write_json(self.out / "metrics.json", metrics)
            write_fold_report(self.out, metrics)
        fabric.barrier()
        return metrics


def _zero_running() -> dict[str, float]:
    return {"loss": 0.0, "ce": 0.0, "sc": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


def _epoch_line(fold: str, row: dict[str, Any], improved: bool, monitor: str) -> str:
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


def train_fold(cfg: TrainConfig, data: str | Path, fold: str | int, out: str | Path, *, resume: bool = False,
               fabric=None, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train one fold of a prepared cache into `out`; returns its metrics (also in out/metrics.json)."""
    return FoldTrainer(cfg, data, fold, out, resume=resume, fabric=fabric, callbacks=callbacks).run()
