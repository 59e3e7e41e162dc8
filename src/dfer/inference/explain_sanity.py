"""The explanations' sanity check: does Grad-CAM find what carries the class? Measured on the patch
set of dfer.synth.patches, where a small still patch's colour is the class and its place is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfer.data.cache import ClipCache
from dfer.data.dataset import ClipDataset
from dfer.inference.explain import Explainer


def gradcam_focus(model, preprocess, class_names: list[str], root: str | Path, ids: list[str],
                  stage: str = "layer3") -> dict[str, float]:
    """How well a model's Grad-CAM of the true class finds the patch, over the clips `ids` of a patch cache:
    `mass_ratio`, the share of the map's mass inside the patch over the patch's share of the frame (1: no
    focus), and `pointing`, the share of clips whose map peaks inside the patch (the pointing game)."""
    import cv2

    root = Path(root)
    size = preprocess.size
    ds = ClipDataset(ClipCache(root), ids, num_frames=preprocess.num_frames, transform_config=preprocess.transform_config())
    ex = Explainer(model, class_names, mean=preprocess.mean, std=preprocess.std, stage=stage)
    ratios, hits, areas = [], [], []
    for k in range(len(ds)):
        x, y, cid = ds[k]
        region = np.load(root / "clips" / f"{cid}.region.npy").astype(np.uint8)
        region = cv2.resize(region, (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
        cam = ex.explain(x.numpy(), int(y)).gradcam.sum(0)  # (S, S) over the clip's frames
        total = float(cam.sum())
        ratios.append(0.0 if total <= 0 else float(cam[region].sum()) / total / region.mean())
        hits.append(bool(region.flat[int(cam.argmax())]))
        areas.append(float(region.mean()))
    return {"mass_ratio": float(np.mean(ratios)), "pointing": float(np.mean(hits)), "region_area": float(np.mean(areas)),
            "clips": len(ds)}
