"""The choices dfer's commands, configs, runtimes and service share, in one light module (no torch):
the CLI builds every parser from these without importing the libraries behind them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

BACKENDS = ("auto", "torch", "onnx", "openvino")  # runtimes; auto: see dfer.inference.runtime_choice
OPENVINO_PRECISIONS = ("auto", "f32", "bf16")  # float precisions OpenVINO runs a float model at
PRECISIONS = (*OPENVINO_PRECISIONS, "int8")  # what --precision takes: int8 runs a verified int8 model
TRAIN_PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true")  # Lightning Fabric's
ATTENTION_STAGES = ("layer3", "layer4", "none")
BASELINES = ("r2plus1d_18", "r3d_18", "mc3_18")  # torchvision's video ResNet-18s with a plain CE head
# The paper's network at a width: half the channels in every stage is the distillation students' narrow
# network (about 4x fewer MACs; the attention block and both heads kept).
DFER_WIDTHS = {"dfer_r2plus1d_18": 1.0, "dfer_r2plus1d_18_half": 0.5}
MODEL_NAMES = (*DFER_WIDTHS, *BASELINES)  # the model registry's names (checkpoints store them)
# Distillation students: (network, frames scale, size scale) relative to the teacher's clip. At the
# paper's 16x112x112 (40.6 GMACs): frames-half 8x112x112 (2.0x fewer MACs), low-res 16x80x80 (1.96x),
# narrow 3.97x, narrow-frames-half 7.9x, narrow-low-res 7.8x (`dfer profile --students`).
STUDENTS = {
    "frames-half": ("dfer_r2plus1d_18", 0.5, 1.0),
    "low-res": ("dfer_r2plus1d_18", 1.0, 5 / 7),
    "narrow": ("dfer_r2plus1d_18_half", 1.0, 1.0),
    "narrow-frames-half": ("dfer_r2plus1d_18_half", 0.5, 1.0),
    "narrow-low-res": ("dfer_r2plus1d_18_half", 1.0, 5 / 7),
}
FRAME_ORDERS = ("natural", "shuffled", "reversed")  # evaluation frame orders (temporal-order check)
EXPORT_FORMATS = ("onnx", "openvino")
ACCEPT_RULES = ("accuracy", "agreement")  # how a reduced-precision model is accepted
MAX_DROP_POINTS = 1.0  # WAR / UAR points a reduced-precision model may lose (accuracy rule)
AGREEMENT_BAR = 0.99  # top-1 agreement with float32 a reduced-precision model must reach (agreement rule)
CALIBRATION_CLIPS = 32  # clips an int8 model is calibrated on
ENGINES = ("local", "ray")
SPLITS = ("train", "val", "test")  # the parts of a fold
EXPLAIN_STAGES = ("layer3", "layer4")  # where Grad-CAM looks
EXPLAIN_STAGE_RESOLUTION = {"layer3": "T/4 x S/8 x S/8 (4 x 14 x 14 at 16x112x112)",
                            "layer4": "T/8 x S/16 x S/16 (2 x 7 x 7 at 16x112x112)"}
SAME_PERSON = 0.6  # dlib's documented face-descriptor distance under which two faces are one person


# -- config fields that are also flags -----------------------------------------------------------
# A config dataclass says once what each of its options is: name, type, default and help. A field made
# with `flag(...)` becomes a command-line flag (dfer.cli.args.add_config_flags): a new option is one line.


@dataclasses.dataclass(frozen=True)
class Flag:
    help: str
    kind: str = ""  # how the CLI reads it: positive_int | nonneg_int | positive_float | nonneg_float | fraction |
    #                 bytes | frame | dir | text | switch (a bare flag sets True) | off (--no-<name> sets False)
    name: str = ""  # the flag's name when it is not the field's (--clip-frames for data.num_frames)
    unit: float = 1.0  # one flag unit in the field's unit (days of a field in seconds: 86400)
    choices: tuple[str, ...] = ()
    metavar: str | None = None


def flag(default: Any = dataclasses.MISSING, *, help: str, kind: str = "", name: str = "", unit: float = 1.0,
         choices: Sequence[str] = (), metavar: str | None = None,
         default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its flag's description in the field's metadata."""
    meta = {"flag": Flag(help, kind, name, unit, tuple(choices), metavar)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
