"""Knowledge distillation: a smaller network (a student) trained from a trained dfer model (its teacher).

Loss (Hinton et al., 2015), with the sparse center loss kept for the student:

    (1 - alpha) * CE(student, labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
        + lambda * L_sc(student)

The teacher sees the clip at its own size (its checkpoint's T x S x S); the student sees the same
augmented clip taken down to its size (every k-th frame, bilinear resize), so both judge the same
pixels. The teacher costs one forward pass per batch: eval mode, no gradients, its parameters
frozen, on the training device in the training precision (a second runtime would mean a second
copy of every batch). Everything else is `dfer train`'s (dfer.engine.trainer): the fold's validation
part selects the student, its test part scores it once, and the same end of fold (temperature,
int8 export, report, model card) follows; a killed distillation resumes from last.pt.

The teacher must have been trained on the same fold (its checkpoint's split digest is compared):
a teacher trained on another fold has seen this fold's test clips, and would leak them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dfer.checkpoint import Checkpoint, load_checkpoint, model_from_checkpoint
from dfer.data.cache import ClipCache
from dfer.data.dataset import ClipDataset
from dfer.data.splits import Splits
from dfer.engine.config import TrainConfig
from dfer.engine.trainer import FoldTrainer
from dfer.errors import ConfigError, DatasetError
from dfer.files import file_digest
from dfer.models.registry import REGISTRY
from dfer.models.students import student_clip


class DistillNet(nn.Module):
    """The student, trained beside a frozen teacher: forward(teacher clip) is the student's output on
    its view of the clip; the teacher's logits of the same clip are kept for the loss."""

    def __init__(self, student: nn.Module, teacher: nn.Module, frames: int, size: int) -> None:
        super().__init__()
        self.student, self.teacher = student, teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.frames, self.size = frames, size
        self.teacher_logits: torch.Tensor | None = None

    def train(self, mode: bool = True) -> DistillNet:
        super().train(mode)
        self.teacher.eval()  # batch norm statistics of the teacher never move
        return self

    def student_view(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, S, S) teacher clip -> (B, 3, t, s, s) student clip: t evenly spaced frames, resized."""
        t = x.shape[2]
        if self.frames != t:
            idx = torch.linspace(0, t - 1, self.frames, device=x.device).round().long()
            x = x.index_select(2, idx)
        if self.size != x.shape[-1]:
            x = F.interpolate(x, size=(x.shape[2], self.size, self.size), mode="trilinear", align_corners=False)
        return x

    def forward(self, x: torch.Tensor):
        with torch.no_grad():
            self.teacher_logits = self.teacher(x).logits.float()  # (B, K)
        return self.student(self.student_view(x))


class DistillLoss(nn.Module):
    """The student's own loss (CE + lambda x sparse center) with CE blended with the KL term to the teacher's
    temperature-softened probabilities. Returns (total, ce, sc) as DferLoss does."""

    def __init__(self, base: nn.Module, net: DistillNet, alpha: float, temperature: float) -> None:
        super().__init__()
        self.base, self.alpha, self.temperature = base, alpha, temperature
        self._net = [net]  # not a submodule: the network is the trainer's

    @property
    def center(self):
        return self.base.center

    def forward(self, logits, embedding, weights, labels):
        ce = self.base.ce(logits.float(), labels)  # (B, K) logits, (B,) labels -> ()
        t = self.temperature
        teacher = self._net[0].teacher_logits  # (B, K), this batch's
        kd = F.kl_div(F.log_softmax(logits.float() / t, dim=1), F.softmax(teacher / t, dim=1),
                      reduction="batchmean") * t * t  # T^2 keeps its gradients' scale as T changes
        total = (1 - self.alpha) * ce + self.alpha * kd
        sc = torch.zeros((), device=ce.device)
        if embedding is not None and self.base.lam:
            sc = self.base.center(embedding, weights, labels)
            total = total + self.base.lam * sc
        return total, ce.detach(), sc.detach()


@dataclass
class Teacher:
    path: Path
    model: nn.Module
    checkpoint: Checkpoint
    sha256: str

    @property
    def clip(self) -> tuple[int, int]:
        pre = self.checkpoint.preprocess
        return int(pre.num_frames), int(pre.size)

    def summary(self) -> dict[str, Any]:
        return {"teacher": self.path.name, "teacher_sha256": self.sha256, "teacher_model": self.checkpoint.model.name,
                "teacher_clip": list(self.clip), "teacher_split_sha256": self.checkpoint.split.get("sha256")}


def load_teacher(path: str | Path, data: str | Path, fold: str, protocol: str | None) -> Teacher:
    """The teacher checkpoint, checked against the cache and the fold before any training starts."""
    path = Path(path)
    ckpt = load_checkpoint(path)  # CheckpointError for anything that is not a dfer checkpoint
    names = list(ClipCache(data).meta["class_names"])
    if list(ckpt.class_names) != names:
        raise ConfigError(f"{path}: the teacher's classes ({', '.join(ckpt.class_names)}) are not the cache's "
                          f"({', '.join(names)}); distil from a teacher trained on this cache")
    digest = Splits.load(data).fold(fold, protocol).digest
    if ckpt.split.get("sha256") != digest:
        raise ConfigError(f"{path}: the teacher was not trained on fold {fold} of {data} (its split differs): it may "
                          "have seen this fold's test clips. Use the teacher of the same fold (RUN/fold_<k>/best.pt)")
    model, _ = model_from_checkpoint(ckpt)
    return Teacher(path, model, ckpt, file_digest(path))


class DistillTrainer(FoldTrainer):
    """FoldTrainer whose network learns from a teacher (cfg.distill): the training part is read at the
    teacher's clip size and the student takes its view of each batch; evaluation and everything after
    training are the student's own, at its own clip size."""

    def __init__(self, cfg: TrainConfig, data: str | Path, fold: str | int, out: str | Path, *, teacher: Teacher,
                 **kw: Any) -> None:
        super().__init__(cfg, data, fold, out, **kw)
        self.teacher = teacher
        frames, size = teacher.clip
        if (frames, size) != (self.cfg.data.num_frames, self.cfg.data.size):  # the teacher's clips for training
            d = self.fd.train
            self.fd.train = ClipDataset(d.cache, list(self.fd.fold.train), train=self.cfg.data.augment,
                                        num_frames=frames, transform_config=_with_size(d, size),
                                        seed=self.cfg.runtime.seed)

    def _training_net(self, net: nn.Module) -> nn.Module:
        self._distill_net = DistillNet(net, self.teacher.model.to(self.fabric.device), self.cfg.data.num_frames,
                                       self.cfg.data.size)
        return self._distill_net

    def _training_loss(self, base: nn.Module) -> nn.Module:
        d = self.cfg.distill
        return DistillLoss(base, self._distill_net, d.alpha, d.temperature)

    def _extra_metrics(self) -> dict[str, Any]:
        d = self.cfg.distill
        return {"distillation": {**self.teacher.summary(), "alpha": d.alpha, "temperature": d.temperature,
                                 "student": d.student, "student_clip": [self.cfg.data.num_frames, self.cfg.data.size]}}


def _with_size(ds: ClipDataset, size: int):
    from dataclasses import replace

    return replace(ds.cfg, size=size)


def distill_config(cfg: TrainConfig, teacher: Teacher) -> TrainConfig:
    """`cfg` with the student's network and clip (cfg.distill.student applied to the teacher's clip)."""
    cfg = copy.deepcopy(cfg)
    clip = student_clip(cfg.distill.student, *teacher.clip)
    cfg.model.name = clip.model
    cfg.data.num_frames, cfg.data.size = clip.num_frames, clip.size
    cfg.distill.teacher = str(teacher.path)
    if cfg.weights and REGISTRY[clip.model].width != 1.0:
        raise ConfigError(f"student {cfg.distill.student!r} is a narrower network: no pretrained backbone weights fit "
                          f"it (drop --weights / weights={cfg.weights})")
    return cfg


def teacher_of_fold(teacher: str | Path, fold: str) -> Path:
    """A checkpoint, or a `dfer cv` run folder (its fold_<k>/best.pt)."""
    teacher = Path(teacher)
    if teacher.is_dir():
        path = teacher / f"fold_{fold}" / "best.pt"
        if not path.is_file():
            raise DatasetError(f"{teacher}: no fold_{fold}/best.pt (a dfer cv run folder has one per fold)")
        return path
    return teacher
