"""The fast path by default: `--backend auto` and the per-checkpoint cache of converted models.

A dfer checkpoint (.pt) is converted once per runtime (OpenVINO IR, ONNX) into a cache folder
keyed by the checkpoint's SHA-256, so a renamed or copied checkpoint reuses it and a retrained
one (new bytes) gets its own; the conversion measures its agreement with PyTorch float32 (see
`export_model`), and `auto` only uses a converted model whose agreement passed `AGREEMENT_BAR`.

`auto`, in order:
1. PyTorch on the GPU when the device is CUDA (or auto with a CUDA GPU present): nothing on a CPU
   runtime beats it;
2. OpenVINO at the CPU's native precision (bf16 on CPUs with native bf16, else f32), when
   OpenVINO is installed; if bf16 misses the bar on the check clips, OpenVINO in f32;
3. ONNX Runtime in float32;
4. PyTorch on the CPU.
A conversion that fails falls through to the next, with the reason in the choice record.

The cache folder is `$DFER_CACHE_DIR` or `~/.cache/dfer`, under `converted/<digest[:16]>/`.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dfer.errors import CheckpointError, ConfigError
from dfer.files import CACHE_ENV, cache_root, file_digest
from dfer.remote import resolve_checkpoint

AGREEMENT_BAR = 0.99  # top-1 agreement with PyTorch float32 a reduced-precision model must reach
COSINE_BAR = 0.99  # and the least logit cosine, on the conversion's check clips
_LOCK = threading.Lock()  # one conversion at a time within a process (service workers share a model)


@dataclass
class BackendChoice:
    """What ran and why: written into summary.json (`settings.backend_choice`) and /v1/model."""

    requested: str
    used: str = ""
    model: str = ""  # the file the runtime loaded (the checkpoint for torch)
    precision: str = ""
    agreement: dict[str, Any] = field(default_factory=dict)  # parity vs PyTorch fp32 measured at conversion
    why: str = ""
    skipped: list[str] = field(default_factory=list)  # runtimes auto passed over, with the reason

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_digest(checkpoint: str | Path) -> str:
    """SHA-256 of a checkpoint, read once per file version: opening a model with `auto` needs it for the
    int8 check and the conversion cache (each read of a full-size checkpoint is 130 MB)."""
    st = os.stat(checkpoint)
    return _digest(str(Path(checkpoint).resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return file_digest(path)


def converted_dir(checkpoint: str | Path) -> Path:
    return cache_root() / "converted" / checkpoint_digest(checkpoint)[:16]


def converted_model(checkpoint: str | Path, fmt: str) -> Path:
    """The checkpoint as `fmt` ("openvino" | "onnx") in the cache, converted now if it is not there.

    The IR's .xml and the .onnx are renamed into place last, so a killed conversion leaves nothing
    that looks done.
    """
    from dfer.inference.export import export_model

    if fmt not in ("openvino", "onnx"):
        raise ConfigError(f"no conversion to {fmt!r}")
    path = converted_dir(checkpoint) / ("model.xml" if fmt == "openvino" else "model.onnx")
    with _LOCK:
        if not path.is_file():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CheckpointError(f"cannot create the model cache {path.parent} ({exc.strerror}); "
                                      f"set {CACHE_ENV} to a writable folder") from None
            export_model(checkpoint, path, format=fmt)
    return path


def passes(agreement: dict[str, Any]) -> bool:
    return (agreement.get("top1_agreement", 0.0) >= AGREEMENT_BAR and agreement.get("min_cosine", 0.0) >= COSINE_BAR)


def openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_wanted(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


INT8_SUFFIX = "-int8.xml"  # best.pt -> best-int8.xml: the int8 model dfer train exports beside a checkpoint


def verified_int8(checkpoint: Path) -> tuple[Path | None, str]:
    """The int8 model of this checkpoint that passed its acceptance rule, beside it or in the conversion
    cache, and why (or why not)."""
    from dfer.inference.export import read_metadata

    digest = checkpoint_digest(checkpoint)
    for cand in (checkpoint.with_name(checkpoint.stem + INT8_SUFFIX), converted_dir(checkpoint) / "model-int8.xml"):
        if not cand.is_file():
            continue
        try:
            meta = read_metadata(cand)
        except (CheckpointError, ImportError):
            continue
        verdict = meta.get("acceptance") or {}
        if meta.get("source_sha256") == digest and verdict.get("accepted"):
            return cand, f"verified int8 model of this checkpoint ({cand.name}; accepted by the {verdict.get('rule')} rule)"
    return None, "no verified int8 model of this checkpoint (dfer train makes one; or dfer export --quantize int8)"


def open_backend(path: str | Path, backend: str = "auto", *, device: str = "auto", threads: int = 0,
                 precision: str = "auto", streams: int = 0):
    """(runtime, class names, Preprocess, model info, BackendChoice) for a checkpoint (.pt) or an
    exported model; the model info says what it was trained on and its temperature (checkpoint.model_info).

    An exported model runs as given: .xml on OpenVINO; .onnx on ONNX Runtime, or OpenVINO when
    asked. A checkpoint runs on `backend`; onnx / openvino convert it once into the cache.
    """
    from dfer.checkpoint import Preprocess, model_from_checkpoint, model_info
    from dfer.inference.backends import BACKENDS, OnnxBackend, OpenVinoBackend, TorchBackend
    from dfer.inference.export import read_metadata

    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    path = resolve_checkpoint(path)
    suffix = path.suffix.lower()
    choice = BackendChoice(requested=backend)

    def exported(model_path: Path, runtime_name: str, prec: str):
        meta = read_metadata(model_path)
        if runtime_name == "openvino":
            float_prec = "auto" if prec == "int8" else prec  # an int8 model's float parts at OpenVINO's choice
            runtime = OpenVinoBackend(model_path, threads=threads, device=device, precision=float_prec, streams=streams)
        else:
            runtime = OnnxBackend(model_path, threads=threads, device=device)
        choice.used, choice.model = runtime_name, str(model_path)
        choice.precision = getattr(runtime, "precision", meta.get("quantization", "fp32"))
        choice.agreement = meta.get("parity_vs_torch_fp32", {})
        return runtime, meta["class_names"], Preprocess.from_dict(meta["preprocess"]), meta.get("model_info", {})

    if suffix in (".xml", ".onnx"):
        name = "openvino" if suffix == ".xml" or backend == "openvino" else "onnx"
        if backend == "auto" and suffix == ".onnx" and openvino_installed() and not cuda_wanted(device):
            name = "openvino"  # the faster runtime for the same graph
        if suffix == ".onnx" and name == "openvino" and backend == "auto":
            choice.why = "exported model given; OpenVINO runs ONNX graphs faster than ONNX Runtime on CPUs"
        else:
            choice.why = "exported model given"
        return (*exported(path, name, precision), choice)

    def torch_runtime(dev: str):
        model, ckpt = model_from_checkpoint(path)
        runtime = TorchBackend(model, dev)
        choice.used, choice.model, choice.precision = "torch", str(path), runtime.detail.split()[-1]
        return runtime, ckpt["class_names"], Preprocess.from_dict(ckpt["preprocess"]), model_info(ckpt)

    if precision == "int8" and backend not in ("auto", "openvino"):
        raise ConfigError(f"--precision int8 runs a verified OpenVINO int8 model; it needs --backend auto or openvino, "
                          f"not {backend}")
    if backend == "openvino" and precision == "int8":
        int8, why = verified_int8(path)
        if int8 is None:
            raise ConfigError(f"{path}: --precision int8 asked for, but {why}")
        choice.why, choice.precision = why, "int8"
        return (*exported(int8, "openvino", "auto"), choice)
    if backend == "torch":
        choice.why = "asked for"
        return (*torch_runtime(device), choice)
    if backend in ("onnx", "openvino"):
        choice.why = "asked for; converted once, cached by the checkpoint's digest"
        return (*exported(converted_model(path, backend), backend, precision), choice)

    # auto
    if cuda_wanted(device) and precision != "int8":
        choice.why = "CUDA GPU: PyTorch with bf16 autocast"
        return (*torch_runtime(device), choice)
    if precision in ("auto", "int8") and openvino_installed():
        int8, why = verified_int8(path)
        if int8 is not None:
            opened = exported(int8, "openvino", "auto")
            choice.why, choice.precision = why, "int8"
            return (*opened, choice)
        if precision == "int8":
            raise ConfigError(f"{path}: --precision int8 asked for, but {why}")
        choice.skipped.append(f"int8: {why}")
    candidates = (["openvino"] if openvino_installed() else []) + ["onnx"]
    if not openvino_installed():
        choice.skipped.append('openvino: not installed (pip install "dfer[openvino]")')
    for name in candidates:
        try:
            model_path = converted_model(path, name)
            meta = read_metadata(model_path)
            agreement = meta.get("parity_vs_torch_fp32", {})
            prec = precision
            if name == "openvino" and precision == "auto" and not passes(agreement):
                # The native precision (bf16) missed the bar on the check clips: float32 is exact.
                choice.skipped.append(f"openvino native precision: agreement {agreement.get('top1_agreement')} "
                                      f"/ cosine {agreement.get('min_cosine')} under the bar")
                prec = "f32"
            elif name == "onnx" and not passes(agreement):
                choice.skipped.append(f"onnx: agreement {agreement} under the bar")
                continue
            opened = exported(model_path, name, prec)
            if prec == "f32" and name == "openvino":
                choice.agreement = {**agreement, "note": "measured at the native precision; f32 runs float32"}
            choice.why = ("fastest runtime installed whose agreement with PyTorch float32 passed at conversion "
                          f"(top-1 >= {AGREEMENT_BAR:.0%})")
            return (*opened, choice)
        except (CheckpointError, ConfigError, ImportError, RuntimeError, OSError) as exc:
            choice.skipped.append(f"{name}: {exc}")
    choice.why = "no converted runtime available; PyTorch on the CPU"
    return (*torch_runtime("cpu"), choice)
