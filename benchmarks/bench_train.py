"""Training step cost, measured in one run: dfer's full step (`dfer.engine.train_one_epoch` on one
batch: network + CE + sparse center loss + Adam + the centers' SGD, through Lightning Fabric as in
training) against torchvision's r2plus1d_18 with plain CE + Adam on the same input.

    python benchmarks/bench_train.py [--sizes 16x112x112:8,8x48x48:8] [--repeats 3]

Prints one JSON object: per clip size and batch, step seconds and clips/s of both, the ratio, and a
projection of one full DFEW 5-fold run (9,356 training clips per fold, 30 epochs) at that speed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from dfer.engine import StepOptions, load_config, train_one_epoch
from dfer.engine.fabric import make_fabric
from dfer.losses import DferLoss
from dfer.models import build_model

DFEW_TRAIN_CLIPS = 9356  # fold 1 of the official split
EPOCHS, FOLDS = 30, 5


def step_time(step, repeats: int) -> float:
    step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(t: int, s: int, b: int, repeats: int, channels_last: bool) -> dict:
    from torchvision.models.video import r2plus1d_18

    x = torch.randn(b, 3, t, s, s)
    y = torch.randint(0, 7, (b,))
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    fabric = make_fabric(load_config(overrides=["runtime.accelerator=cpu", "runtime.precision=32-true"]))
    model = build_model(num_classes=7).to(memory_format=fmt)
    net, opt = fabric.setup(model, torch.optim.Adam(model.parameters(), 1e-3))
    crit = DferLoss(7)
    copt = crit.center.center_optimizer()
    batch = [(x, y, [str(i) for i in range(b)])]
    options = StepOptions(channels_last=channels_last)

    def dfer_step():
        train_one_epoch(net, crit, opt, copt, batch, fabric, lambda step: 1e-3, options=options)

    tv = r2plus1d_18(num_classes=7).to(memory_format=fmt)
    topt = torch.optim.Adam(tv.parameters(), 1e-3)

    def tv_step():
        loss = F.cross_entropy(tv(x), y)
        topt.zero_grad()
        loss.backward()
        topt.step()

    d, base = step_time(dfer_step, repeats), step_time(tv_step, repeats)
    rate = b / d
    hours = FOLDS * EPOCHS * DFEW_TRAIN_CLIPS / rate / 3600
    return {"clip": f"{t}x{s}x{s}", "batch": b, "channels_last_3d": channels_last,
            "dfer_step_s": round(d, 3), "dfer_clips_per_s": round(rate, 2),
            "torchvision_r2plus1d_18_step_s": round(base, 3), "ratio_dfer_to_torchvision": round(base / d, 3),
            "dfew_5fold_30ep_projection_hours": round(hours, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="16x112x112:8,8x48x48:8,4x32x32:8", help="TxHxW:batch, comma separated")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out = {"threads": torch.get_num_threads(), "device": "cpu", "runs": []}
    for item in args.sizes.split(","):
        clip, b = item.split(":")
        t, s, _ = (int(v) for v in clip.split("x"))
        for cl in (False, True):
            out["runs"].append(bench(t, s, int(b), args.repeats, cl))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
