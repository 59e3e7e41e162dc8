"""Torch Dataset and DataLoader over a clip cache."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from dfer.data.cache import ClipCache
from dfer.data.sampling import ClipSampler, SegmentSampler, UniformSampler
from dfer.data.transforms import ClipTransformConfig, EvalTransform, TrainTransform
from dfer.errors import DatasetError


class ClipDataset(Dataset):
    """Items: (clip (3, T, S, S) float normalised, label int, clip id str).

    `train=True`: segment sampling (temporal jitter) and spatial/colour augmentation;
    otherwise uniform sampling and a deterministic resize.
    """

    def __init__(
        self,
        cache: str | Path | ClipCache,
        ids: Sequence[str] | None = None,
        *,
        train: bool = False,
        num_frames: int = 16,
        transform_config: ClipTransformConfig | None = None,
        sampler: ClipSampler | None = None,
        seed: int = 0,
    ) -> None:
        self.cache = cache if isinstance(cache, ClipCache) else ClipCache(cache)
        rows = {r.id: r for r in self.cache.index("ok")}
        ids = sorted(rows) if ids is None else list(ids)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise DatasetError(f"{self.cache.root}: {len(missing)} clip ids are not prepared (e.g. {missing[:3]})")
        self.rows = [rows[i] for i in ids]
        self.class_names = self.cache.meta["class_names"]
        self.train = train
        self.sampler = sampler or (SegmentSampler(num_frames) if train else UniformSampler(num_frames))
        cfg = transform_config or ClipTransformConfig()
        self.transform = TrainTransform(cfg) if train else EvalTransform(cfg)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Training randomness depends on (seed, epoch, index) only, so runs are reproducible
        whatever the number of workers and resumable mid-run."""
        self.epoch = epoch

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = self.rows[i]
        frames = self.cache.load_frames(row.id)  # (N, S, S, 3) uint8, memory-mapped
        g = None
        rng = None
        if self.train:
            g = torch.Generator().manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFFFFFF)
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (), generator=g)))
        idx = self.sampler(len(frames), rng).indices
        clip = self.transform(frames[idx], g)
        return clip, row.label, row.id


def class_balanced_sampler(labels: Sequence[int], num_samples: int | None = None, seed: int = 0) -> WeightedRandomSampler:
    """Each class drawn equally often on average (with replacement)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    g = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples or len(labels), generator=g)


def make_loader(
    dataset: ClipDataset,
    *,
    batch_size: int = 32,
    workers: int = 2,
    shuffle: bool | None = None,
    balanced: bool = False,
    drop_last: bool = False,
    seed: int = 0,
) -> DataLoader:
    shuffle = dataset.train if shuffle is None else shuffle
    sampler = class_balanced_sampler(dataset.labels, seed=seed) if balanced else None
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        generator=g,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers > 0 else None,
    )
