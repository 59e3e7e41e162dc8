"""`dfer doctor`: what this machine can do with dfer, on one screen (or as JSON for a bug report).

Versions are read from installed packages' metadata (nothing heavy is imported unless it must be:
OpenVINO to ask for its CPU's precision, torch only where an NVIDIA device exists).
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from dfer.files import CACHE_ENV, cache_root
from dfer.formatting import human_bytes

PACKAGES = {  # what to report: distribution name -> what it is for
    "dfer": "dfer", "torch": "training and the PyTorch runtime", "torchvision": "the networks",
    "openvino": "the fast CPU runtime (auto)", "onnxruntime": "the ONNX runtime", "av": "video decoding (FFmpeg)",
    "dlib-bin": "face detection", "fastapi": "dfer serve", "uvicorn": "dfer serve",
    "nncf": "int8 made by accuracy", "ray": "--engine ray", "huggingface-hub": "hf:// checkpoints",
    "face-recognition-models": "people (who is who)",
}
EXTRAS = {  # optional extras: the package that tells whether it is installed, and the command
    "int8": ("nncf", 'pip install "dfer[int8]"'), "ray": ("ray", 'pip install "dfer[ray]"'),
    "hub": ("huggingface-hub", 'pip install "dfer[hub]"'),
    "people": ("face-recognition-models", 'pip install "dfer[people]"'),
}
FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
         "avx512_bf16": "AVX512-BF16", "amx_tile": "AMX", "amx_bf16": "AMX-BF16"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu() -> dict[str, Any]:
    name, flags = platform.processor() or platform.machine(), set()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("model name") and name in ("", platform.machine(), platform.processor()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {"name": name, "cores": os.cpu_count() or 1,
            "flags": {label: flag in flags for flag, label in FLAGS.items()}}


def cuda_devices() -> list[str]:
    if sys.platform.startswith("linux") and not glob.glob("/dev/nvidia[0-9]*"):
        return []
    try:
        import torch
    except ImportError:
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def openvino_precision() -> str | None:
    """The float precision OpenVINO runs at on this CPU by default (bf16 where native, else f32)."""
    try:
        import openvino as ov

        hint = str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")).lower()
    except Exception:  # noqa: BLE001 - not installed, or no CPU plugin: said as unknown
        return None
    return "bf16" if "bf16" in hint or "bfloat16" in hint else "f32" if "f32" in hint or "float32" in hint else hint


def auto_choice(cuda: list[str], ov_precision: str | None, flags: dict[str, bool]) -> str:
    """What `--backend auto` runs a checkpoint with here, and why (dfer.inference.runtime_choice's rules)."""
    if cuda:
        return f"PyTorch on {cuda[0]} with bf16 autocast (a CUDA GPU is the first rule)"
    int8 = "a verified int8 model when the checkpoint has one (made by dfer train, "
    int8 += "VNNI speeds it up here)" if flags.get("AVX512-VNNI") or flags.get("AVX-VNNI") else "no VNNI here: smaller gain)"
    if ov_precision:
        why = "bf16 is native here: AVX512-BF16 or AMX" if "bf16" in ov_precision else "no native bf16 on this CPU"
        return f"{int8}; else OpenVINO at {ov_precision} ({why}), converted once and cached"
    return "ONNX Runtime in float32, else PyTorch on the CPU (OpenVINO is not installed)"


CPU_WHEELS = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"


def torch_build() -> dict[str, Any]:
    """Which PyTorch build is installed (CUDA or CPU-only) and whether this machine has a GPU it could use, read
    from the installed files (no torch import: seconds on small CPUs), with advice when they do not match."""
    version = _version("torch")
    gpu = sys.platform.startswith("linux") and bool(glob.glob("/dev/nvidia[0-9]*"))
    if version is None:
        return {"version": None, "build": None, "gpu": gpu, "advice": None}
    cuda_files = [d for d in metadata.distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-")]
    build = "CUDA" if "+cu" in version or cuda_files else "CPU-only"
    advice = None
    if build == "CUDA" and not gpu:
        cuda_bytes = sum(p.stat().st_size for d in cuda_files for p in map(Path, map(d.locate_file, d.files or ()))
                         if p.is_file())
        advice = (f"a CUDA build of PyTorch ({human_bytes(cuda_bytes)} of NVIDIA libraries) on a machine with no GPU: "
                  f"a CPU-only build runs dfer the same here; before installing dfer: {CPU_WHEELS}")
    elif build == "CPU-only" and gpu:
        advice = "a CPU-only build of PyTorch on a machine with an NVIDIA GPU: install a CUDA build to train on it"
    return {"version": version, "build": build, "gpu": gpu, "advice": advice}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def chromium() -> dict[str, Any]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    version = None
    if path:
        try:
            version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            version = None
    return {"path": path, "version": version, "for": "the browser test (tests/serve/test_app.py); apt-get install chromium"}


def report() -> dict[str, Any]:
    """Everything `dfer doctor` says, as one JSON-ready dict."""
    c = cpu()
    cuda = cuda_devices()
    ov = openvino_precision()
    ffmpeg = None
    try:
        import av

        ffmpeg = ".".join(str(v) for v in av.library_versions.get("libavformat", ())) or None
    except ImportError:
        pass
    root = cache_root()
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES}, "ffmpeg_libavformat": ffmpeg,
        "cpu": c, "cuda_devices": cuda, "torch_build": torch_build(), "openvino_precision": ov,
        "auto": auto_choice(cuda, ov, c["flags"]),
        "cache": {"path": str(root), "set_by": CACHE_ENV if os.environ.get(CACHE_ENV) else "default",
                  "bytes": folder_size(root)},
        "chromium": chromium(),
        "missing_extras": {extra: command for extra, (dist, command) in EXTRAS.items() if _version(dist) is None},
    }


def format_report(r: dict[str, Any]) -> str:
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in r["cpu"]["flags"].items())
    lines = [f"dfer {r['packages']['dfer']} on Python {r['python']} ({r['platform']})", "",
             f"CPU       {r['cpu']['name']}, {r['cpu']['cores']} cores", f"          {flags}",
             f"CUDA      {', '.join(r['cuda_devices']) or 'no CUDA device'}",
             f"PyTorch   {r['torch_build']['version'] or 'not installed'} ({r['torch_build']['build'] or '-'} build; "
             f"{'a GPU is here' if r['torch_build']['gpu'] else 'no GPU here'})",
             *([f"          {r['torch_build']['advice']}"] if r["torch_build"]["advice"] else []),
             f"auto      {r['auto']}", "", "packages"]
    for name, version in r["packages"].items():
        lines.append(f"  {name:<24} {version or 'not installed':<14} {PACKAGES[name]}")
    lines.append(f"  {'FFmpeg (libavformat)':<24} {r['ffmpeg_libavformat'] or 'unknown'}")
    cache = r["cache"]
    lines += ["", f"cache     {cache['path']} ({human_bytes(cache['bytes'])}; {CACHE_ENV} moves it)",
              f"chromium  {r['chromium']['version'] or r['chromium']['path'] or 'not found (only the browser test needs it)'}"]
    if r["missing_extras"]:
        lines += ["", "optional extras not installed:"]
        lines += [f"  {extra:<8} {command}" for extra, command in r["missing_extras"].items()]
    return "\n".join(lines)
