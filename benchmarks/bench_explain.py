"""Do the explanations mean something? Measured, not assumed.

    python benchmarks/bench_explain.py [--epochs 8] [--run dfer-demo/cv]

Prints (and writes bench_explain.json) one JSON object:
- focus: on the patch sanity set (dfer.synth.patches: the class is the colour of a small patch at a
  random place), a small network trained on it and the same network with random weights: Grad-CAM
  mass ratio (mass inside the patch over the patch's share of the frame; 1 = no focus) and the
  pointing-game hit rate, for layer3 and layer4. The randomised model must lose the focus.
- temporal (with --run, a `dfer cv` run on dfer synth, e.g. the demo's): for every fold's selected
  model, the temporal importance of the true class on the fold's Surprise and Fear test clips (the
  same frames in opposite order), per sampled frame, beside how much each frame differs from the
  frame at the mirrored position (what tells the two classes apart); the peak and the correlation.
- calibration (with --run): each fold's temperature and test ECE before / after.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dfer.checkpoint import model_from_checkpoint
from dfer.data import ClipCache
from dfer.data.dataset import ClipDataset
from dfer.data.transforms import ClipTransformConfig
from dfer.engine import load_config
from dfer.inference.explain import Explainer
from dfer.inference.explain_sanity import gradcam_focus
from dfer.models import build_from_config
from dfer.runs import train_fold
from dfer.synth.patches import make_patch_cache


def focus(epochs: int, size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_patch_cache(Path(tmp) / "patch", per_class=16, size=size)
        cfg = load_config(overrides=["data.num_frames=4", f"data.size={size}", "data.batch_size=8", "data.workers=0",
                                     "data.flip=0", "runtime.progress=false", f"optim.epochs={epochs}",
                                     "model.zero_init_residual=true"])
        t0 = time.perf_counter()
        m = train_fold(cfg, root, 1, Path(tmp) / "run")
        model, ckpt = model_from_checkpoint(Path(tmp) / "run" / "best.pt")
        pre, names = ckpt.preprocess, ckpt.class_names
        test = json.loads((root / "splits.json").read_text())["protocols"]["kfold"]["folds"][0]["test"]
        torch.manual_seed(0)
        rnd = build_from_config(model.config).eval()
        out = {"clip": f"4x{size}x{size}", "epochs": epochs, "test_war": m.selected.test["war"],
               "train_s": round(time.perf_counter() - t0, 1)}
        for stage in ("layer3", "layer4"):
            out[stage] = {"trained": gradcam_focus(model, pre, names, root, test, stage),
                          "randomised": gradcam_focus(rnd, pre, names, root, test, stage)}
        return out


def temporal(run: Path) -> dict:
    folds = {}
    for best in sorted(run.glob("fold_*/best.pt")):
        model, ckpt = model_from_checkpoint(best)
        pre, names = ckpt.preprocess, ckpt.class_names
        split = json.loads((best.parent / "split.json").read_text())
        cache = ClipCache(ckpt.split["cache"])
        rows = cache.finished()
        ids = [i for i in split["test"] if names[rows[i].label] in ("Surprise", "Fear")]
        ds = ClipDataset(cache, ids, num_frames=pre.num_frames,
                         transform_config=ClipTransformConfig(size=pre.size, mean=pre.mean, std=pre.std))
        temp = float((ckpt.calibration or {}).get("temperature", 1.0))
        ex = Explainer(model, names, mean=pre.mean, std=pre.std, temperature=temp)
        imp, diff = [], []
        for k in range(len(ds)):
            x, y, _ = ds[k]
            imp.append(ex.explain(x.numpy(), int(y)).importance)
            clip = x.numpy()  # (3, T, S, S): how far each frame is from the frame at the mirrored position
            diff.append(np.abs(clip - clip[:, ::-1]).mean(axis=(0, 2, 3)))
        imp, diff = np.mean(imp, 0), np.mean(diff, 0)
        folds[best.parent.name] = {
            "clips": len(ds), "importance": [round(float(v), 4) for v in imp],
            "mirror_difference": [round(float(v), 4) for v in diff],
            "peak_positions": [int(i) for i in np.argsort(-imp)[:2]],
            "most_different_positions": [int(i) for i in np.argsort(-diff)[:2]],
            "correlation": round(float(np.corrcoef(imp, diff)[0, 1]), 3),
        }
    return folds


def calibration(run: Path) -> dict:
    out = {}
    for metrics in sorted(run.glob("fold_*/metrics.json")):
        cal = json.loads(metrics.read_text()).get("calibration") or {}
        if "test" in cal:
            out[metrics.parent.name] = {"temperature": round(cal["temperature"], 3),
                                        "ece_before": round(cal["test"]["ece_before"], 4),
                                        "ece_after": round(cal["test"]["ece_after"], 4), "clips": cal["test"]["clips"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--run", type=Path, help="a dfer cv run on dfer synth (e.g. dfer-demo/cv)")
    ap.add_argument("--out", type=Path, default=Path("bench_explain.json"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = {"focus": focus(args.epochs, args.size)}
    if args.run:
        result["temporal"] = temporal(args.run)
        result["calibration"] = calibration(args.run)
    text = json.dumps(result, indent=2)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
