"""Which runtime runs a model, and why: `--backend auto` and the forced choices.

`select_backend(checkpoint, request)` decides (converting a checkpoint once into the cache when the
choice needs it, see dfer.inference.conversion); `open_runtime` opens what was chosen;
`open_backend` does both. The choice is recorded (`BackendChoice`) in summary.json and /v1/model.

An exported model (.xml, .onnx) runs as given: .xml on OpenVINO; .onnx on OpenVINO with `auto`
(it runs ONNX graphs faster than ONNX Runtime on CPUs) or when asked, else ONNX Runtime.

A checkpoint with `auto`, the first rule that applies:
1. a CUDA device (or auto with a CUDA GPU present): PyTorch on the GPU (bf16 autocast);
2. a verified int8 model of the checkpoint (beside it or in the cache) and OpenVINO installed;
3. OpenVINO at the CPU's native precision (bf16 where native, else f32); f32 if the native
   precision missed the agreement bar on the check clips;
4. ONNX Runtime in float32, if its agreement passed;
5. PyTorch on the CPU.
A conversion that fails falls through to the next rule, with the reason in `choice.skipped`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from dfer.acceptance import conversion_passes
from dfer.errors import CheckpointError, ConfigError
from dfer.files import cache_root
from dfer.inference.backends import BACKENDS, Backend, OnnxBackend, OpenVinoBackend, cuda_wanted
from dfer.inference.conversion import ensure_converted, verified_int8
from dfer.inference.metadata import read_metadata
from dfer.options import AGREEMENT_BAR
from dfer.preprocess import Preprocess, model_info
from dfer.remote import resolve_checkpoint


@dataclass(frozen=True)
class RuntimeRequest:
    """What the user asked for (`--backend --device --precision --threads --streams`)."""

    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"  # auto | f32 | bf16 (OpenVINO's float precision) | int8 (a verified int8 model)
    threads: int = 0  # ONNX Runtime / OpenVINO threads (0: the runtime's default)
    streams: int = 0  # OpenVINO requests at once (0: auto)


@dataclass
class BackendChoice:
    """What ran and why: written into summary.json (`settings.backend_choice`) and /v1/model."""

    requested: str
    used: str = ""
    model: str = ""  # the file the runtime loads (the checkpoint for torch)
    precision: str = ""  # what was asked of the runtime; the opened runtime's own once opened
    agreement: dict[str, Any] = field(default_factory=dict)  # parity vs PyTorch fp32 measured at conversion
    why: str = ""
    skipped: list[str] = field(default_factory=list)  # runtimes auto passed over, with the reason
    device: str = "cpu"  # torch only: the device it runs on

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("device")
        return d


def openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _exported_as_given(path: Path, req: RuntimeRequest, choice: BackendChoice) -> BackendChoice:
    suffix = path.suffix.lower()
    auto_ov = req.backend == "auto" and suffix == ".onnx" and openvino_installed() and not cuda_wanted(req.device)
    choice.used = "openvino" if suffix == ".xml" or req.backend == "openvino" or auto_ov else "onnx"
    choice.model, choice.precision = str(path), req.precision
    choice.why = ("exported model given; OpenVINO runs ONNX graphs faster than ONNX Runtime on CPUs" if auto_ov
                  else "exported model given")
    return choice


def _int8_model(path: Path, choice: BackendChoice, *, required: bool) -> bool:
    int8, why = verified_int8(path, unresolved_ok=required)
    if int8 is None:
        if required:
            raise ConfigError(f"{path}: --precision int8 asked for, but {why}")
        choice.skipped.append(f"int8: {why}")
        return False
    choice.used, choice.model, choice.precision, choice.why = "openvino", str(int8), "int8", why
    return True


def _converted_float(path: Path, name: str, req: RuntimeRequest, choice: BackendChoice) -> bool:
    """Rule 3 / 4: the checkpoint converted to `name`, if its agreement allows."""
    try:
        model_path = ensure_converted(path, name)
        agreement = read_metadata(model_path).parity_vs_torch_fp32
    except (CheckpointError, ConfigError, ImportError, RuntimeError, OSError) as exc:
        choice.skipped.append(f"{name}: {exc}")
        return False
    precision = req.precision
    if name == "openvino" and req.precision == "auto" and not conversion_passes(agreement):
        # The native precision (bf16) missed the bar on the check clips: float32 is exact.
        choice.skipped.append(f"openvino native precision: agreement {agreement.get('top1_agreement')} "
                              f"/ cosine {agreement.get('min_cosine')} under the bar")
        precision, agreement = "f32", {**agreement, "note": "measured at the native precision; f32 runs float32"}
    elif name == "onnx" and not conversion_passes(agreement):
        choice.skipped.append(f"onnx: agreement {agreement} under the bar")
        return False
    choice.used, choice.model, choice.precision, choice.agreement = name, str(model_path), precision, agreement
    choice.why = ("fastest runtime installed whose agreement with PyTorch float32 passed at conversion "
                  f"(top-1 >= {AGREEMENT_BAR:.0%})")
    return True


def _torch(path: Path, device: str, why: str, choice: BackendChoice) -> BackendChoice:
    choice.used, choice.model, choice.device, choice.why = "torch", str(path), device, why
    return choice


def select_backend(checkpoint: str | Path, request: RuntimeRequest | None = None) -> BackendChoice:
    """The runtime, model file and precision to run `checkpoint` with (see the module's rules)."""
    req = request or RuntimeRequest()
    if req.backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {req.backend!r}")
    path = resolve_checkpoint(checkpoint)
    choice = BackendChoice(requested=req.backend)
    if path.suffix.lower() in (".xml", ".onnx"):
        return _exported_as_given(path, req, choice)
    if req.precision == "int8" and req.backend not in ("auto", "openvino"):
        raise ConfigError(f"--precision int8 runs a verified OpenVINO int8 model; it needs --backend auto or openvino, "
                          f"not {req.backend}")
    if req.backend == "openvino" and req.precision == "int8":
        _int8_model(path, choice, required=True)
        return choice
    if req.backend == "torch":
        return _torch(path, req.device, "asked for", choice)
    if req.backend in ("onnx", "openvino"):
        choice.used, choice.model, choice.precision = req.backend, str(ensure_converted(path, req.backend)), req.precision
        choice.why = "asked for; converted once, cached by the checkpoint's digest"
        choice.agreement = read_metadata(choice.model).parity_vs_torch_fp32
        return choice
    return _auto(path, req, choice)


def _auto(path: Path, req: RuntimeRequest, choice: BackendChoice) -> BackendChoice:
    if cuda_wanted(req.device) and req.precision != "int8":
        return _torch(path, req.device, "CUDA GPU: PyTorch with bf16 autocast", choice)
    ov = openvino_installed()
    if req.precision in ("auto", "int8") and ov and _int8_model(path, choice, required=req.precision == "int8"):
        return choice
    if not ov:
        choice.skipped.append('openvino: not installed (pip install "dfer[openvino]")')
    for name in (["openvino"] if ov else []) + ["onnx"]:
        if _converted_float(path, name, req, choice):
            return choice
    return _torch(path, "cpu", "no converted runtime available; PyTorch on the CPU", choice)


def open_runtime(choice: BackendChoice, request: RuntimeRequest | None = None, *,
                 label: str = "") -> tuple[Backend, list[str], Preprocess, dict[str, Any]]:
    """(runtime, class names, Preprocess, model info) of a choice; `choice.precision` becomes the runtime's.
    `label`: how the runtime's detail names the model file (default: its file name)."""
    req = request or RuntimeRequest()
    if choice.used == "torch":
        # torch on purpose here only: a run on an exported or converted model never imports it (~1 s)
        from dfer.checkpoint import model_from_checkpoint
        from dfer.inference.torch_backend import TorchBackend
        model, ckpt = model_from_checkpoint(choice.model)
        runtime: Backend = TorchBackend(model, choice.device)
        choice.precision = runtime.precision
        return runtime, ckpt.class_names, ckpt.preprocess, model_info(ckpt)
    meta = read_metadata(choice.model)
    if choice.used == "openvino":
        float_precision = "auto" if choice.precision in ("int8", "", "auto") else choice.precision
        runtime = OpenVinoBackend(choice.model, threads=req.threads, device=req.device, precision=float_precision,
                                  streams=req.streams, label=label)
        choice.precision = "int8" if choice.precision == "int8" else runtime.precision
    else:
        runtime = OnnxBackend(choice.model, threads=req.threads, device=req.device, label=label)
        choice.precision = runtime.precision
    if not choice.agreement:
        choice.agreement = meta.parity_vs_torch_fp32
    return runtime, meta.class_names, meta.preprocess, meta.model_info


class OpenedBackend(NamedTuple):
    """What `open_backend` opened: the runtime and what the model says about itself, and why this runtime."""

    runtime: Backend
    class_names: list[str]
    preprocess: Preprocess
    model_info: dict[str, Any]
    choice: BackendChoice


def open_backend(checkpoint: str | Path, request: RuntimeRequest | None = None) -> OpenedBackend:
    """`select_backend`, then `open_runtime` on its choice."""
    choice = select_backend(checkpoint, request)
    model = Path(choice.model)
    converted = choice.used != "torch" and model.parent.parent == cache_root() / "converted"
    label = f"{resolve_checkpoint(checkpoint).name} converted" if converted else model.name  # as the user knows it
    return OpenedBackend(*open_runtime(choice, request, label=label), choice)


__all__ = ["BackendChoice", "OpenedBackend", "RuntimeRequest", "open_backend", "open_runtime", "openvino_installed",
           "select_backend"]
