"""Training speed, measured in one run: every registered model's full training step
(`dfer.engine.train_one_epoch` on one batch, through Lightning Fabric as in training: network, CE
(+ lambda x sparse center loss for the paper's network), Adam, the centers' SGD) against
torchvision's r2plus1d_18 with plain CE + Adam on the same input, plus a projection of one DFEW
5-fold x 30-epoch run (9,356 training clips per fold).

    python benchmarks/bench_train.py [--sizes 16x112x112:8] [--models dfer_r2plus1d_18,r3d_18] [--compile]

On a CUDA machine it runs on the GPU with bf16 autocast and channels_last_3d (and torch.compile with
--compile), at batch 32 by default; on a CPU, fp32. Prints one JSON object.
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
from dfer.models import MODELS, build_model

DFEW_TRAIN_CLIPS = 9356  # fold 1 of the official split
EPOCHS, FOLDS = 30, 5


def step_time(step, repeats: int, sync) -> float:
    step()  # warm-up (allocations, cuDNN autotuning, compilation)
    step()
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_model(name: str, fabric, x, y, repeats: int, channels_last: bool, compile_: bool, sync) -> float:
    torch.manual_seed(0)
    model = build_model(name=name, num_classes=7)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    net = torch.compile(model) if compile_ else model
    net, opt = fabric.setup(net, torch.optim.Adam(model.parameters(), 1e-3))
    crit = DferLoss(7).to(fabric.device)
    copt = crit.center.center_optimizer()
    batch = [(x, y, [str(i) for i in range(len(y))])]
    options = StepOptions(channels_last=channels_last)
    return step_time(lambda: train_one_epoch(net, crit, opt, copt, batch, fabric, lambda s: 1e-3, options=options),
                     repeats, sync)


def bench_torchvision(fabric, x, y, repeats: int, channels_last: bool, sync) -> float:
    from torchvision.models.video import r2plus1d_18

    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    tv = r2plus1d_18(num_classes=7).to(memory_format=fmt)
    tv, topt = fabric.setup(tv, torch.optim.Adam(tv.parameters(), 1e-3))
    xd, yd = fabric.to_device(x), fabric.to_device(y)

    def step():
        loss = F.cross_entropy(tv(xd).float(), yd)
        topt.zero_grad()
        fabric.backward(loss)
        topt.step()

    return step_time(step, repeats, sync)


def main() -> None:
    ap = argparse.ArgumentParser()
    cuda = torch.cuda.is_available()
    ap.add_argument("--sizes", default="16x112x112:32" if cuda else "16x112x112:4,8x32x32:8",
                    help="TxHxW:batch, comma separated")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma separated, from {', '.join(MODELS)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="torch.compile the networks (GPU)")
    args = ap.parse_args()
    precision = "bf16-mixed" if cuda else "32-true"
    fabric = make_fabric(load_config(overrides=[f"runtime.accelerator={'cuda' if cuda else 'cpu'}",
                                                f"runtime.precision={precision}"]))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    channels_last = cuda  # pays on GPUs; on CPUs it is measured by the inference benchmark
    out = {"device": torch.cuda.get_device_name() if cuda else "cpu", "precision": precision,
           "channels_last_3d": channels_last, "compile": args.compile, "threads": torch.get_num_threads(), "runs": []}
    for item in args.sizes.split(","):
        clip, b = item.split(":")
        t, s, _ = (int(v) for v in clip.split("x"))
        b = int(b)
        x = torch.randn(b, 3, t, s, s).contiguous(
            memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)
        y = torch.randint(0, 7, (b,))
        base = bench_torchvision(fabric, x, y, args.repeats, channels_last, sync)
        for name in args.models.split(","):
            d = bench_model(name, fabric, x, y, args.repeats, channels_last, args.compile, sync)
            rate = b / d
            out["runs"].append({
                "model": name, "clip": clip, "batch": b, "step_s": round(d, 4), "clips_per_s": round(rate, 2),
                "torchvision_r2plus1d_18_ce_step_s": round(base, 4), "ratio_to_torchvision": round(base / d, 3),
                "dfew_5fold_30ep_projection_h": round(FOLDS * EPOCHS * DFEW_TRAIN_CLIPS / rate / 3600, 1)})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
