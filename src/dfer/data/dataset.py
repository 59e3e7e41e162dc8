"""Torch Dataset and DataLoader over a clip cache.

`make_loader` hands each worker a whole batch of indices at once: the worker writes every
clip, normalised, straight into one batch tensor in shared memory (no per-clip float
tensors, no collate copy). The batch sampler lives in the main process and sends
`(epoch, indices)`, so augmentation depends on (seed, epoch, index) alone: the same with 0
or N workers, with persistent workers, and after resuming mid-epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler, get_worker_info

from dfer.data.cache import ClipCache
from dfer.data.sampling import ClipSampler, SegmentSampler, UniformSampler
from dfer.data.transforms import ClipTransformConfig, EvalTransform, TrainTransform, to_tensor
from dfer.errors import ConfigError, DatasetError
from dfer.options import FRAME_ORDERS  # noqa: F401 - re-exported (the CLI reads dfer.options)


def _item_seed(seed: int, epoch: int, index: int) -> int:
    # A fixed mix (not Python's salted hash) so seeds agree across processes and runs.
    return (seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2**31 - 1)


class ClipDataset(Dataset):
    """Items: (clip (3, T, S, S) float normalised, label int, clip id str).

    `train=True`: segment sampling (temporal jitter) and spatial/colour augmentation;
    otherwise uniform sampling and a deterministic resize. `frame_order="shuffled"` or
    `"reversed"` reorders the sampled frames of every clip, for temporal ablations.
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
        frame_order: str = "natural",
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
        self.num_frames = num_frames
        self.sampler = sampler or (SegmentSampler(num_frames) if train else UniformSampler(num_frames))
        self.cfg = transform_config or ClipTransformConfig()
        self.transform = TrainTransform(self.cfg, raw=True) if train else EvalTransform(self.cfg, raw=True)
        self.seed = seed
        self.epoch = 0
        if frame_order not in FRAME_ORDERS:
            raise ConfigError(f"frame order must be one of {', '.join(FRAME_ORDERS)}, got {frame_order!r}")
        self.frame_order = frame_order

    def set_epoch(self, epoch: int) -> None:
        """For direct indexing; loaders from `make_loader` carry the epoch in their sampler."""
        self.epoch = epoch

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def frames(self, i: int, epoch: int | None = None) -> np.ndarray:
        """The transformed uint8 clip (T, S, S, 3) of item i."""
        row = self.rows[i]
        frames = self.cache.load_frames(row.id)  # (N, S0, S0, 3) uint8, memory-mapped
        g, rng = None, None
        if self.train:
            g = torch.Generator().manual_seed(_item_seed(self.seed, self.epoch if epoch is None else epoch, i))
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (), generator=g)))
        idx = self.sampler(len(frames), rng).indices
        if self.frame_order == "shuffled":  # temporal ablation: same frames, order destroyed (fixed per clip)
            idx = np.random.default_rng(_item_seed(self.seed, 0, i)).permutation(idx)
        elif self.frame_order == "reversed":
            idx = idx[::-1]
        return self.transform(frames[idx], g)

    def __getitem__(self, i: int):
        row = self.rows[i]
        return to_tensor(self.frames(i), self.cfg.mean, self.cfg.std), row.label, row.id

    def get_batch(self, indices: Sequence[int], epoch: int | None = None):
        """(clips (B, 3, T, S, S) float, labels (B,) long, ids list) built in place."""
        s = self.cfg.size
        shape = (len(indices), 3, self.num_frames, s, s)
        if get_worker_info() is not None:
            # Allocate in shared memory directly, as default_collate does, so sending is free.
            numel = int(np.prod(shape))
            storage = torch.UntypedStorage._new_shared(numel * 4)
            out = torch.empty(0, dtype=torch.float32).set_(storage, 0, shape)
        else:
            out = torch.empty(shape, dtype=torch.float32)
        for j, i in enumerate(indices):
            to_tensor(self.frames(i, epoch), self.cfg.mean, self.cfg.std, out=out[j])
        labels = torch.tensor([self.rows[i].label for i in indices], dtype=torch.long)
        return out, labels, [self.rows[i].id for i in indices]


class EpochBatchSampler(Sampler):
    """Yields (epoch, [indices]) batches; order seeded by (seed, epoch).

    - `balanced`: draw classes equally often (with replacement), for imbalanced sets;
    - `rank`/`world_size`: each process of a distributed run gets its own share;
    - `skip_batches`: resume mid-epoch (the first k batches of the current epoch are skipped once).
    """

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        balanced: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.labels = np.asarray(labels)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.balanced = balanced
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip_batches = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch = epoch
        self.skip_batches = skip_batches

    def _order(self) -> np.ndarray:
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.balanced:
            counts = np.bincount(self.labels)
            p = 1.0 / counts[self.labels]
            order = rng.choice(n, size=n, replace=True, p=p / p.sum())
        elif self.shuffle:
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        if self.world_size > 1:
            per = int(np.ceil(n / self.world_size))
            order = np.resize(order, per * self.world_size)  # pad by wrapping so ranks stay in step
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = len(self._order()) if self.world_size > 1 else len(self.labels)
        return n // self.batch_size if self.drop_last else int(np.ceil(n / self.batch_size))

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        order = self._order()
        n_batches = len(self)
        for b in range(self.skip_batches, n_batches):
            yield self.epoch, order[b * self.batch_size : (b + 1) * self.batch_size].tolist()


class _BatchView(Dataset):
    """Indexable by (epoch, [indices]); one call builds one batch."""

    def __init__(self, dataset: ClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, indices = key
        return self.dataset.get_batch(indices, epoch)


def class_balanced_sampler(labels: Sequence[int], num_samples: int | None = None, seed: int = 0) -> WeightedRandomSampler:
    """Each class drawn equally often on average (with replacement), for a plain DataLoader."""
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
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Batches of (clips (B, 3, T, S, S) float, labels (B,), ids).

    `loader.sampler` is an `EpochBatchSampler`: call `loader.sampler.set_epoch(e)` every epoch.
    """
    shuffle = dataset.train if shuffle is None else shuffle
    sampler = EpochBatchSampler(
        dataset.labels, batch_size, shuffle=shuffle, drop_last=drop_last, balanced=balanced,
        seed=seed, rank=rank, world_size=world_size,
    )
    return DataLoader(
        _BatchView(dataset),
        batch_size=None,  # batches are built by the dataset itself
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        # Its own generator: creating an iterator then leaves torch's global RNG (dropout) untouched,
        # which keeps a resumed run bit-identical to an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=2 if workers > 0 else None,
    )
