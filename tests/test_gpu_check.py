"""benchmarks/gpu_check.py: says clearly when no GPU is there, and its steps run (tiny, on the CPU)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script measures it instead")
def test_without_a_gpu_the_check_says_so_measuring_nothing():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"].startswith("no CUDA GPU is present on this machine")


@pytest.mark.slow
def test_every_step_runs_in_cpu_smoke_mode():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["cpu_smoke"] and out["training_step"]["clips_per_s"] > 0 and out["training_step"]["ratio_to_torchvision"] > 0
    assert out["cv_one_epoch"]["train_clips"] > 0 and out["predict"]["realtime_factor_whole_command"] > 0
    assert out["training_step"]["dfew_5fold_30ep_projection_h"] > 0
