"""The two loops, as plain functions: `train_one_epoch` and `predict_dataset`.

The fold trainer, cross-validation and `benchmarks/bench_train.py` all train through
`train_one_epoch`; every score (validation, test, `dfer evaluate`) comes from `evaluate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dfer.data.dataset import ClipDataset, make_loader
from dfer.errors import TrainingError
from dfer.metrics import classification_report
from dfer.progress import progress_bar


@dataclass
class EpochStats:
    """Running sums of one epoch (kept in checkpoints, so a resumed epoch reports like a whole one)."""

    loss: float = 0.0
    ce: float = 0.0
    sc: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    def add(self, n: int, total: float, ce: float, sc: float, correct: int, seconds: float) -> None:
        self.loss += total * n
        self.ce += ce * n
        self.sc += sc * n
        self.correct += correct
        self.seen += n
        self.seconds += seconds

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class StepOptions:
    grad_clip: float = 0.0  # max global grad norm; 0: off
    channels_last: bool = False
    progress: bool = False
    desc: str = "train"
    on_step: Callable[[int, int, float], None] | None = None  # (batch index, global step, loss) after each step
    hint: str = ""  # appended to the error when the loss stops being finite


def train_one_epoch(
    net: torch.nn.Module,
    criterion: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    center_optimizer: torch.optim.Optimizer,
    batches: Iterable,
    fabric,
    lr_at: Callable[[int], float],
    *,
    global_step: int = 0,
    first_batch: int = 0,
    num_batches: int | None = None,
    stats: EpochStats | None = None,
    options: StepOptions | None = None,
) -> tuple[EpochStats, int]:
    """One pass over `batches` of (clips (B, 3, T, S, S), labels (B,), ids): CE + lambda x sparse
    center loss, Adam on the network and SGD on the centers. Returns the epoch's stats and the
    global step after it. `first_batch` > 0 continues an epoch interrupted after that many batches."""
    opts = options or StepOptions()
    stats = stats if stats is not None else EpochStats()
    net.train()
    # a live bar on a terminal; in a log the caller's one line per epoch says enough
    bar = progress_bar(num_batches, opts.desc, unit="batch", enabled=opts.progress, initial=first_batch, lines=False)
    t_last = time.perf_counter()
    for batch_idx, (x, y, _) in enumerate(batches, start=first_batch):
        x, y = fabric.to_device(x), fabric.to_device(y)
        if opts.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        for g in optimizer.param_groups:
            g["lr"] = lr_at(global_step)
        out = net(x)  # logits (B, K), embedding (B, D), weights (B, D)
        emb, w = (None, None) if out.embedding is None else (out.embedding.float(), out.weights.float())
        total, ce, sc = criterion(out.logits, emb, w, y)
        if not torch.isfinite(total):
            raise TrainingError(f"{opts.desc}: the loss became {float(total)} at step {batch_idx + 1}; "
                                f"last.pt keeps the last good state.{opts.hint}")
        optimizer.zero_grad(set_to_none=True)
        center_optimizer.zero_grad(set_to_none=True)
        fabric.backward(total)
        centers = criterion.center.centers
        if fabric.world_size > 1:  # centers live outside DDP: average their update over processes
            centers.grad = fabric.all_reduce(centers.grad, reduce_op="mean")
        if opts.grad_clip > 0:
            fabric.clip_gradients(net, optimizer, max_norm=opts.grad_clip)
        optimizer.step()
        center_optimizer.step()
        global_step += 1
        now = time.perf_counter()
        stats.add(y.shape[0], float(total.detach()), float(ce), float(sc), int((out.logits.argmax(1) == y).sum()),
                  now - t_last)
        t_last = now
        bar.update(1, loss=f"{stats.loss / stats.seen:.3f}")
        if opts.on_step is not None:
            opts.on_step(batch_idx, global_step, float(total.detach()))
    bar.close()
    return stats, global_step


def lr_schedule(lr: float, schedule: str, total_steps: int, steps_per_epoch: int, *, warmup_epochs: float = 0.0,
                step_epochs: int = 10, step_gamma: float = 0.1) -> Callable[[int], float]:
    """Learning rate at optimizer step `step` (per-iteration, so exact on a mid-epoch resume)."""
    warm = int(round(warmup_epochs * steps_per_epoch))

    def at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        if schedule == "cosine":
            span = max(1, total_steps - warm)
            return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, (step - warm) / span)))
        if schedule == "step":
            return lr * step_gamma ** ((step // max(1, steps_per_epoch)) // max(1, step_epochs))
        return lr

    return at


@dataclass
class Predictions:
    ids: list[str]
    labels: np.ndarray  # (N,) int
    logits: np.ndarray  # (N, K) float32

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(1) if len(self.ids) else np.zeros(0, dtype=np.int64)

    def loss(self) -> float:
        if not len(self.ids):
            return float("nan")
        return float(F.cross_entropy(torch.from_numpy(self.logits), torch.from_numpy(self.labels).long()))

    def report(self, class_names: list[str]) -> dict[str, Any]:
        rep = classification_report(self.preds, self.labels, len(class_names), class_names).to_dict()
        rep["loss"] = self.loss()
        return rep


@torch.no_grad()
def predict_dataset(
    model: torch.nn.Module,
    dataset: ClipDataset,
    *,
    batch_size: int = 32,
    workers: int = 0,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
    fabric=None,
    autocast_dtype: torch.dtype | None = None,
) -> Predictions:
    """Logits of every clip of `dataset`, in dataset order.

    With a Lightning `fabric` of several processes, each scores its share and the shares are
    gathered (every process gets the full result).
    """
    rank, world = (fabric.global_rank, fabric.world_size) if fabric is not None else (0, 1)
    loader = make_loader(dataset, batch_size=batch_size, workers=workers, shuffle=False, rank=rank, world_size=world)
    loader.sampler.set_epoch(0)
    index = {r.id: k for k, r in enumerate(dataset.rows)}
    was_training = model.training
    model.eval()
    idx_parts, logit_parts = [], []
    device = torch.device(device) if fabric is None else fabric.device
    try:
        for x, _, ids in loader:
            x = x.to(device, non_blocking=True)  # (B, 3, T, S, S)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(x).logits  # (B, K)
            logit_parts.append(logits.float())
            idx_parts.append(torch.tensor([index[i] for i in ids], device=logits.device))
    finally:
        model.train(was_training)
    k = len(dataset.class_names)
    logits = torch.cat(logit_parts) if logit_parts else torch.zeros(0, k, device=device)
    idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long, device=device)
    if world > 1:
        logits = fabric.all_gather(logits).reshape(-1, k)
        idx = fabric.all_gather(idx).reshape(-1)
    out = np.zeros((len(dataset), k), dtype=np.float32)
    out[idx.cpu().numpy()] = logits.cpu().numpy()  # padded duplicates land on the same row
    labels = np.asarray(dataset.labels, dtype=np.int64)
    return Predictions([r.id for r in dataset.rows], labels, out)
