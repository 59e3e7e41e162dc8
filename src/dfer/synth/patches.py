"""A sanity set for explanations: the class is the colour of a small still patch at a random place
on a grey noisy background, so only the patch carries the class and where it is is known.

A model that learned the task should put its Grad-CAM mass on the patch; the same network with
random weights should not (the model-randomisation check of Adebayo et al., 2018): measured by
dfer.inference.explain_sanity.gradcam_focus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfer.data.cache import ClipCache, ClipRow
from dfer.data.splits import make_splits
from dfer.files import atomic_write_json

PATCH_COLOURS = [(230, 60, 60), (60, 200, 80), (70, 110, 240)]  # red, green, blue


def patch_clip(label: int, rng: np.random.Generator, frames: int = 4, size: int = 48, side: int = 14):
    """(frames, size, size, 3) uint8 and the (size, size) bool region: a small patch whose colour is
    the class, still at a random place on a grey noisy background; nothing else carries the class."""
    y, x = (int(v) for v in rng.integers(0, size - side, 2))
    clip = (rng.integers(100, 140) + rng.normal(0, 18, (frames, size, size, 3))).clip(0, 255).astype(np.uint8)
    clip[:, y : y + side, x : x + side] = PATCH_COLOURS[label]
    region = np.zeros((size, size), bool)
    region[y : y + side, x : x + side] = True
    return clip, region


def make_patch_cache(root, per_class: int = 16, frames: int = 4, size: int = 48, seed: int = 0) -> Path:
    """A clip cache of the patch-colour task (see patch_clip); each clip's region is saved beside it
    as clips/<id>.region.npy, (size, size) bool."""
    root = Path(root)
    cache = ClipCache(root)
    cache.init({"dataset": "patch", "class_names": ["red", "green", "blue"],
                "face": {"detector": "none", "size": size}, "grouped": False})
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(per_class):
        for k in range(3):
            row = ClipRow(f"p{k}_{j:03d}", k, "", "patch", frames, frames, 25.0)
            clip, region = patch_clip(k, rng, frames, size)
            cache.write_clip(row, clip)
            np.save(root / "clips" / f"{row.id}.region.npy", region)
            rows.append(row)
    cache.write_index(rows)
    atomic_write_json(root / "splits.json", make_splits("patch", rows, k=3, seed=seed, val_fraction=0.2))
    return root
