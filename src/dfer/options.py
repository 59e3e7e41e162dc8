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
# The model names, baselines and distillation students are the model registry's (dfer.models.registry).
FRAME_ORDERS = ("natural", "shuffled", "reversed")  # evaluation frame orders (temporal-order check)
EXPORT_FORMATS = ("onnx", "openvino")
ACCEPT_RULES = ("accuracy", "agreement")  # how a reduced-precision model is accepted
MAX_DROP_POINTS = 1.0  # WAR / UAR points a reduced-precision model may lose (accuracy rule)
AGREEMENT_BAR = 0.99  # top-1 agreement with float32 a reduced-precision model must reach (agreement rule)
CALIBRATION_CLIPS = 32  # clips an int8 model is calibrated on
INT8_SUFFIX = "-int8.xml"  # best.pt -> best-int8.xml: the int8 model dfer train exports beside a checkpoint
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
