"""Export to ONNX or OpenVINO IR (fp32, or int8 by ONNX Runtime static quantisation) with dfer metadata inside.

The exported graph maps normalised clips (B, 3, T, S, S) to `logits` (B, K) and `embedding`
(B, 256); the center-loss weight network is a training device and is left out. The model's
`metadata_props["dfer"]` holds JSON with the class names, the preprocessing (clip size, mean,
std, face settings), the model config, versions and the parity measured at export. OpenVINO IR
(`model.xml` + `model.bin`) is converted from the same ONNX graph (int8 stays int8: OpenVINO runs
the QDQ pairs as integer kernels) and keeps the same JSON in the model's rt_info under "dfer".
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dfer.acceptance import Int8Outcome, Int8Status, Verdict, accuracy_check, agreement_check, describe
from dfer.checkpoint import Checkpoint, model_from_checkpoint, versions
from dfer.data.dataset import ClipDataset
from dfer.errors import CheckpointError, ConfigError, DferError, Int8Refused
from dfer.files import atomic_write_bytes, default_file_mode, file_digest
from dfer.formatting import percent, percent1
from dfer.inference.backends import OnnxBackend, OpenVinoBackend
from dfer.inference.export_settings import ExportSettings
from dfer.inference.metadata import METADATA_KEY, ExportMetadata, read_metadata  # noqa: F401 - re-exported
from dfer.options import ACCEPT_RULES, CALIBRATION_CLIPS, EXPORT_FORMATS, INT8_SUFFIX, MAX_DROP_POINTS
from dfer.preprocess import Preprocess, model_info
from dfer.progress import progress_bar
from dfer.remote import resolve_checkpoint
from dfer.synth.clips import face_clips

QUANTIZE = (None, "int8")
FORMATS = EXPORT_FORMATS


class InferenceHead(nn.Module):
    """The deployable part of a dfer model: clips -> (logits, embedding); a baseline without the
    center-loss head gives its pooled features as the embedding."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net.forward_features(clips)  # (B, 512, T/8, H/16, W/16)
        pooled = self.net.pool(fmap).flatten(1)  # (B, 512)
        head = getattr(self.net, "center_head", None)
        return self.net.classifier(pooled), head.embed(pooled) if head is not None else pooled  # (B, K), (B, D)


def calibration_clips(preprocess: Preprocess, *, data: str | Path | None = None, count: int = CALIBRATION_CLIPS,
                      seed: int = 0,
                      offset: int = 0, ids: list[str] | None = None, with_labels: bool = False):
    """(N, 3, T, S, S) float32 normalised clips for int8 calibration and parity checks.

    From a prepared clip cache when given (use your own data for the best int8 accuracy): clips
    `offset .. offset + count` of one seeded permutation, so calibration (offset 0) and check clips
    (offset = the calibration count) never share a clip. Else synthetic rendered faces (dfer.synth)
    with varied identities and expressions, `seed` choosing them. `with_labels`: (clips, labels), the
    labels None for synthetic faces.
    """
    t = preprocess.num_frames
    if data is not None:
        ds = ClipDataset(data, num_frames=t, transform_config=preprocess.transform_config(), ids=ids)  # ids: only these
        idx = np.random.default_rng(0).permutation(len(ds))[offset : offset + count]
        if len(idx) == 0:
            raise ConfigError(f"{data}: {len(ds)} clips, too few for {offset} calibration clips plus check clips; "
                              "give a larger cache or fewer --calibration-clips")
        items = [ds[int(i)] for i in sorted(idx)]
        clips = np.stack([x.numpy() for x, _, _ in items])
        return (clips, np.array([int(y) for _, y, _ in items])) if with_labels else clips
    raw = face_clips(count, t, int(preprocess.face.get("size", 128)), seed=seed)  # (N, T, S0, S0, 3) uint8
    clips = np.stack([preprocess.clip(c) for c in raw])
    return (clips, None) if with_labels else clips


def export_float(head: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    """ONNX graph with a dynamic batch axis. The TorchScript exporter first: it writes the same graph
    (parity is measured below either way) about 15x faster than the dynamo exporter, which matters
    because `--backend auto` converts on first use; the dynamo exporter if it cannot."""
    import warnings

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # its deprecation notice and tracer remarks are not the user's concern
            torch.onnx.export(head, (example,), str(path), dynamo=False, input_names=["clips"],
                              output_names=["logits", "embedding"], dynamic_axes={"clips": {0: "batch"}},
                              opset_version=opset)
        return
    except Exception:  # noqa: BLE001 - any failure of the old exporter: use the new one
        path.unlink(missing_ok=True)
    batch = torch.export.Dim("batch", min=1, max=256)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        prog = torch.onnx.export(head, (example,), dynamo=True, input_names=["clips"], output_names=["logits", "embedding"],
                                 dynamic_shapes=({0: batch},), opset_version=opset, verbose=False)
    prog.save(str(path))


def _quantize_int8(fp32: Path, out: Path, clips: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it: Iterator[np.ndarray] = iter(clips)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"clips": x[None]}

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        # Kept in float: the stem's two convs (raw pixels in), the attention matmuls (softmax maps) and
        # the linear heads; under 3% of the MACs, and they hold most of the int8 error.
        nodes = onnx.load(str(pre), load_external_data=False).graph.node  # topological order
        keep = [n.name for n in nodes if n.op_type == "Conv"][:2]
        keep += [n.name for n in nodes if n.op_type in ("MatMul", "Gemm")]
        # QDQ with per-channel int8 weights and uint8 activations: runs as integer kernels in ORT.
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep)


def _set_metadata(path: Path, meta: dict[str, Any]) -> bytes:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    p = m.metadata_props.add()
    p.key, p.value = METADATA_KEY, json.dumps(meta)
    return m.SerializeToString()


def parity(torch_logits: np.ndarray, onnx_logits: np.ndarray) -> dict[str, float]:
    a, b = torch_logits.astype(np.float64), onnx_logits.astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return {"max_abs_diff": float(np.abs(a - b).max()), "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
            "min_cosine": float(cos.min()), "clips": int(len(a))}


def _save_openvino(onnx_path: Path, meta: dict[str, Any], out: Path) -> None:
    """IR pair written beside `out` under temporary names, .bin then .xml renamed into place (the .xml last)."""
    import openvino as ov

    # The runtime's ONNX reader, not ov.convert_model: the converter sends usage telemetry by default.
    model = ov.Core().read_model(str(onnx_path))
    model.set_rt_info(json.dumps(meta), [METADATA_KEY])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as tmp:
        xml = Path(tmp) / out.name
        ov.save_model(model, str(xml), compress_to_fp16=False)  # keep fp32 weights exactly
        for part in (xml.with_suffix(".bin"), xml):
            os.chmod(part, default_file_mode())
            os.replace(part, out.with_suffix(part.suffix))


INT8_CHECK_CLIPS = 64  # held-out clips the int8 agreement is measured on (16 for nothing finer than 1/16)
INT8_VALIDATION_CLIPS = CALIBRATION_CLIPS  # clips NNCF's accuracy control validates on, apart from both other sets


def _have_nncf() -> bool:
    try:
        import nncf  # noqa: F401
    except ImportError:
        return False
    return True


def _quantize_openvino_int8(fp32: Path, calib: np.ndarray, val: np.ndarray, val_labels: np.ndarray, least: float):
    """OpenVINO int8 model by NNCF post-training quantisation with accuracy control: layers are
    quantised, then the ones that cost most top-1 accuracy on the validation clips (scored against
    `val_labels`: the true labels, or float32's own for the agreement rule) are put back in float
    until it is >= `least` (mixed precision). None without NNCF."""
    import logging

    # NNCF imports torch's C++ extension helper, which warns about a missing CUDA runtime on CPU machines.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
    except ImportError:
        return None
    import openvino as ov

    def agreement(compiled, items) -> tuple[float, list[float]]:
        out = compiled.output("logits")
        hits = [float(np.argmax(compiled(clip[None])[out]) == label) for clip, label in items]  # (N,)
        return float(np.mean(hits)), hits

    model = ov.Core().read_model(str(fp32))
    calibration = nncf.Dataset(list(calib), lambda x: x[None])
    validation = nncf.Dataset(list(zip(val, val_labels)), lambda item: item[0][None])

    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)  # its progress lines are not the user's concern
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return nncf.quantize_with_accuracy_control(
                model, calibration, validation, validation_fn=agreement, max_drop=1.0 - least,
                drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calib))
    finally:
        nncf_log.setLevel(level)


@dataclass
class _Reference:
    """What every step of an export works from: the checkpoint, its network as PyTorch runs it, the fold's
    parts (when a split is given), the clips the result is judged on and float32's logits on them."""

    path: Path
    ckpt: Checkpoint
    head: nn.Module
    torch_logits: Any  # (N, 3, T, S, S) -> (N, K)
    train_ids: list[str] | None
    judge_ids: list[str] | None
    test_ids: list[str] | None
    clips: np.ndarray  # (N, 3, T, S, S) check clips, never calibrated on
    labels: np.ndarray | None  # their labels (None: synthetic faces)
    ref: np.ndarray  # (N, K) float32 logits
    rule: str  # the acceptance rule that applies (accuracy needs labels; else agreement)

    @property
    def preprocess(self) -> Preprocess:
        return self.ckpt.preprocess


def export_model(checkpoint: str | Path, out: str | Path, settings: ExportSettings | None = None, *,
                 progress: bool = False, **fields: Any) -> ExportMetadata:
    """Write an ONNX model (.onnx) or OpenVINO IR (.xml + .bin) of a dfer checkpoint, fp32 or int8, as
    `settings` say (an ExportSettings; `fields` change some of them: `format="openvino", quantize="int8"`).

    Returns the metadata stored inside (an ExportMetadata), with the parity against PyTorch fp32
    measured by the runtime of the format (ONNX Runtime; OpenVINO at its default precision on this
    CPU, named in `parity_runtime`) on clips never used for calibration: 8 for a float model, which
    only checks that the graph is the model; 64 for int8 (fewer if the cache is small).

    int8: OpenVINO IR by NNCF with accuracy control (needs `nncf`; the layers that cost agreement on
    32 more held-out clips stay in float), or ONNX Runtime static QDQ (and OpenVINO from that graph
    without NNCF). `accept` decides whether an int8 model is written (dfer.acceptance: accepted and
    unresolved are written, the latter not run by `--backend auto`; refused raises Int8Refused with the
    figures): "accuracy" (default), a paired comparison of its WAR and UAR with float32's on held-out
    labelled clips (without labelled clips, i.e. synthetic calibration, the agreement rule applies and the
    metadata says so); "agreement" when its top-1 agreement with float32 is >= `min_agreement` (0 writes
    it anyway).

    `calibration_split`: a fold's split.json (written by dfer train beside its checkpoints), with
    `calibration` its cache: int8 is calibrated (and NNCF validates) on the fold's training clips,
    judged on its validation clips (its test clips when it has none), and reported on every one of
    its test clips (`test_report`), the clips the fold's scores come from.

    `progress`: a bar over the steps on a terminal (int8 with accuracy control takes minutes).
    """
    s = replace(settings or ExportSettings(), **fields)
    out = Path(out)
    _check_arguments(out, s)
    steps = progress_bar(5 if s.quantize else 3, f"export {out.name}", unit="step", enabled=progress, lines=False)
    ref = _reference(resolve_checkpoint(checkpoint), s)
    steps.update(1, step="float32 reference")
    with tempfile.TemporaryDirectory() as tmp:
        path, method = Path(tmp) / "fp32.onnx", "fp32"
        export_float(ref.head, torch.from_numpy(ref.clips[:1]), path, s.opset)
        steps.update(1, step="graph")
        if s.quantize == "int8":
            path, method = quantize_int8(path, Path(tmp), ref, s)
            steps.update(1, step="int8")
        runtime = OnnxBackend(path) if s.format == "onnx" else OpenVinoBackend(path, streams=1)  # one caller
        new = runtime(ref.clips)
        steps.update(1, step="parity")
        meta = build_metadata(ref, s, method, parity(ref.ref, new), runtime.detail)
        if s.quantize:
            _accept(meta, ref, s, runtime, new)
            steps.update(1, step="acceptance")
            if meta.acceptance["verdict"] == Verdict.REFUSED.value:
                steps.close()
                raise Int8Refused(_refusal(out, meta.acceptance, s.format))
        write_model(path, meta, out, s.format)
    steps.close()
    return meta


def _reference(checkpoint: Path, s: ExportSettings) -> _Reference:
    model, ckpt = model_from_checkpoint(checkpoint)
    head = InferenceHead(model).eval()
    torch_logits = _logits_of(head)
    train_ids, judge_ids, test_ids = _split_ids(s.calibration_split, s.calibration)
    n_val = INT8_VALIDATION_CLIPS if s.quantize and s.format == "openvino" and _have_nncf() else 0
    clips, labels = check_clips(ckpt.preprocess, calibration=s.calibration, quantized=bool(s.quantize), ids=judge_ids,
                                after=s.calibration_clips + n_val)
    rule = s.accept if labels is not None else "agreement"
    return _Reference(checkpoint, ckpt, head, torch_logits, train_ids, judge_ids, test_ids, clips, labels,
                      torch_logits(clips), rule)


def _accept(meta: ExportMetadata, ref: _Reference, s: ExportSettings, runtime, new: np.ndarray) -> None:
    """The acceptance record of an int8 model (dfer.acceptance) and, for a fold, its test report."""
    k = len(ref.ckpt.class_names)
    if ref.rule == "accuracy":
        meta.acceptance = accuracy_check(ref.labels, ref.ref, new, k, s.max_drop)
    else:
        note = ("no labelled clips (synthetic calibration faces): the agreement rule applies; give --calibration CACHE"
                if s.accept == "accuracy" else "")
        meta.acceptance = agreement_check(meta.parity_vs_torch_fp32, s.min_agreement, note)
    if ref.test_ids is not None and ref.test_ids != ref.judge_ids:
        clips, labels = calibration_clips(ref.preprocess, data=s.calibration, count=len(ref.test_ids), ids=ref.test_ids,
                                          with_labels=True)
        meta.test_report = accuracy_check(labels, ref.torch_logits(clips), runtime(clips), k, s.max_drop)


def _check_arguments(out: Path, s: ExportSettings) -> None:
    if s.format not in FORMATS:
        raise CheckpointError(f"export format must be one of {', '.join(FORMATS)}, got {s.format!r}")
    if s.quantize not in QUANTIZE:
        raise CheckpointError(f"quantization must be int8 or none, got {s.quantize!r}")
    if not 0.0 <= s.min_agreement <= 1.0:
        raise ConfigError(f"min_agreement must be in [0, 1], got {s.min_agreement}")
    if s.accept not in ACCEPT_RULES:
        raise ConfigError(f"accept must be one of {', '.join(ACCEPT_RULES)}, got {s.accept!r}")
    if s.format == "openvino" and out.suffix.lower() != ".xml":
        raise CheckpointError(f"{out}: OpenVINO IR is written as NAME.xml (+ NAME.bin); name the output NAME.xml")
    if s.format == "openvino":
        OpenVinoBackend.require()


def _logits_of(head: nn.Module):
    def torch_logits(x: np.ndarray) -> np.ndarray:  # (N, 3, T, S, S) -> (N, K), 16 clips at a time
        with torch.inference_mode():
            return np.concatenate([head(torch.from_numpy(x[k : k + 16]))[0].numpy() for k in range(0, len(x), 16)])

    return torch_logits


def check_clips(pre: Preprocess, *, calibration: str | Path | None, quantized: bool, ids: list[str] | None,
                after: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The clips a converted model is judged on, and their labels (None for synthetic faces). The rule:
    never a clip it was calibrated or validated on. With a fold's split (`ids`): its validation part
    (else its test part). Else from `calibration` (a clip cache; synthetic faces without one) the
    clips that come `after` the calibration and validation ones in the same seeded order: 8 for a
    float model (they only show that the graph is the model), INT8_CHECK_CLIPS for int8."""
    if quantized and ids is not None:
        return calibration_clips(pre, data=calibration, count=len(ids), ids=ids, with_labels=True)
    if quantized:
        return calibration_clips(pre, data=calibration, count=INT8_CHECK_CLIPS, seed=1, offset=after, with_labels=True)
    return calibration_clips(pre, data=calibration, count=8, seed=1), None


def quantize_int8(fp32: Path, folder: Path, ref: _Reference, s: ExportSettings) -> tuple[Path, str]:
    """The int8 model of `fp32` in `folder` and how it was made, calibrated on `s.calibration_clips` clips:
    NNCF with accuracy control (validated on INT8_VALIDATION_CLIPS clips after the calibration ones, against
    their labels for the accuracy rule, float32's own top-1 for the agreement rule) when NNCF is installed
    and the format is OpenVINO, else ONNX Runtime static QDQ."""
    pre = ref.preprocess
    calib = calibration_clips(pre, data=s.calibration, count=s.calibration_clips, ids=ref.train_ids)
    if s.format == "openvino" and _have_nncf():
        val, val_labels = calibration_clips(pre, data=s.calibration, count=INT8_VALIDATION_CLIPS, seed=2,
                                            offset=s.calibration_clips, ids=ref.train_ids, with_labels=True)
        target = val_labels if ref.rule == "accuracy" and val_labels is not None else ref.torch_logits(val).argmax(1)
        least = 1.0 - s.max_drop / 100 if ref.rule == "accuracy" else s.min_agreement  # NNCF's accuracy floor
        ov_model = _quantize_openvino_int8(fp32, calib, val, target, least)
        if ov_model is not None:
            import openvino as ov

            path = folder / "int8.xml"
            ov.save_model(ov_model, str(path), compress_to_fp16=False)
            return path, "NNCF post-training int8 with accuracy control (float kept where accuracy needs it)"
    path = folder / "int8.onnx"
    _quantize_int8(fp32, path, calib)
    return path, "ONNX Runtime static int8 (QDQ)"


def build_metadata(ref: _Reference, s: ExportSettings, method: str, agreement: dict[str, Any],
                   runtime: str) -> ExportMetadata:
    """What an exported model carries: classes, preprocessing, model, how it was made, its parity."""
    ckpt = ref.ckpt
    calibration = (f"{s.calibration} (train part of {Path(s.calibration_split).name})" if s.calibration_split else
                   str(s.calibration) if s.calibration else "synthetic faces (dfer.synth)")
    return ExportMetadata(f"dfer-{s.format}", list(ckpt.class_names), ckpt.preprocess,
                          {"name": ckpt.model.name, "config": ckpt.model.config}, s.quantize or "fp32", method,
                          calibration, agreement, runtime, ref.path.name, file_digest(ref.path), versions(),
                          model_info(ckpt))


def write_model(path: Path, meta: ExportMetadata, out: Path, format: str) -> None:
    """The model at `path` (ONNX or IR) written to `out` in `format` with `meta` inside, atomically."""
    if format == "onnx":
        atomic_write_bytes(out, _set_metadata(path, meta.to_dict()))
    else:
        _save_openvino(path, meta.to_dict(), out)


def _split_ids(calibration_split, calibration):
    """(train, judge, test) clip ids of a fold's split.json: calibrate on train, accept on val (else
    test), report on test; (None, None, None) without a split."""
    if calibration_split is None:
        return None, None, None
    if calibration is None:
        raise ConfigError("calibration_split needs calibration: the clip cache the split refers to")
    try:
        split = json.loads(Path(calibration_split).read_text())
        train, val, test = list(split["train"]), list(split.get("val") or []), list(split["test"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{calibration_split}: not a dfer split file with train and test ids ({exc})") from None
    return train, (val or test), test


def _refusal(out: Path, verdict: dict[str, Any], format: str) -> str:
    if verdict["rule"] == "accuracy":
        figures = f"it is {verdict['reason']} on held-out labelled clips: " + describe(verdict)
    else:
        figures = (f"int8 agrees with float32 on the top-1 class of {percent1(verdict['top1_agreement'])} of "
                   f"{verdict['clips']} held-out clips, under the {percent(verdict['min_agreement'], 0, suffix='%')} bar")
    return (f"{out}: not written: {figures}. Calibrate on your own data (--calibration CACHE) or with more clips "
            "(--calibration-clips)" + ("" if format == "openvino" and _have_nncf() else
                                       ", use the OpenVINO format with NNCF (pip install \"dfer[int8]\")")
            + ", or keep float (OpenVINO's native precision)")


def export_fold_int8(best: Path, data: str | Path, *, calibration_clips_count: int = CALIBRATION_CLIPS,
                     max_drop: float = MAX_DROP_POINTS) -> Int8Outcome:
    """A trained fold's best.pt as OpenVINO int8 beside it (best-int8.xml, which `--backend auto` picks when
    it is accepted): calibrated on the fold's train part, judged on its validation part by the accuracy rule,
    reported on its test part (its split.json beside best.pt). A refusal or a failure is reported, never
    raised (the trained model is kept either way)."""
    out = best.with_name(best.stem + INT8_SUFFIX)
    try:
        meta = export_model(best, out, ExportSettings(format="openvino", quantize="int8", calibration=data,
                                                      calibration_split=best.parent / "split.json",
                                                      calibration_clips=calibration_clips_count, accept="accuracy",
                                                      max_drop=max_drop))
    except Int8Refused as exc:
        return Int8Outcome(Int8Status.REFUSED, reason=str(exc))
    except DferError as exc:  # no NNCF, a runtime that cannot load int8 here
        return Int8Outcome(Int8Status.FAILED, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a quantiser's own error must not lose the trained model
        return Int8Outcome(Int8Status.FAILED, reason=f"{exc.__class__.__name__}: {str(exc)[:300]}")
    status = Int8Status.ACCEPTED if meta.accepted else Int8Status.UNRESOLVED
    return Int8Outcome(status, out.name, meta.quantization_method, meta.acceptance, meta.test_report,
                       None if meta.accepted else meta.acceptance.get("reason"))


def export_onnx(checkpoint: str | Path, out: str | Path, **kwargs: Any) -> ExportMetadata:
    """`export_model(..., format="onnx")`."""
    return export_model(checkpoint, out, format="onnx", **kwargs)
