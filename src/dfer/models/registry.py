"""The model registry: one entry per model name, the one place its facts are written (light: no torch).

As timm keeps one pretrained config per model name, each entry says what the network is (its family,
torchvision backbone and width), what it is, and the input it was designed for (its default clip and
normalisation). The distillation students are entries derived from it: a network of the registry at
a fraction of its teacher's clip. `dfer.options`, the backbone, `ModelConfig`, the demo, the CLI and
the reports read names and facts from here alone; the network classes are bound to the names in
dfer.models.net.
"""

from __future__ import annotations

from dataclasses import dataclass

from dfer.errors import ConfigError

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's Kinetics-400 normalisation
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class ModelEntry:
    name: str  # stable: checkpoints store it
    family: str  # "dfer": the paper's network (attention block, CE and sparse-center-loss heads); "baseline": plain CE
    arch: str  # torchvision's video ResNet-18 it is built on: r2plus1d_18 | r3d_18 | mc3_18
    width: float  # channels as a fraction of torchvision's in every stage
    description: str
    clip: tuple[int, int] = (16, 112)  # default frames x side (the paper's 16 x 112 x 112)
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    @property
    def attention(self) -> bool:
        """Whether the network has the spatio-temporal attention block (and the center-loss head)."""
        return self.family == "dfer"


@dataclass(frozen=True)
class StudentEntry:
    """A distillation student: a registry network on its teacher's clip scaled in frames and side."""

    name: str
    model: str  # a ModelEntry's name
    frames_scale: float
    size_scale: float
    description: str


REGISTRY: dict[str, ModelEntry] = {}
STUDENT_REGISTRY: dict[str, StudentEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    REGISTRY[entry.name] = entry
    return entry


def register_student(entry: StudentEntry) -> StudentEntry:
    if entry.model not in REGISTRY:
        raise ValueError(f"student {entry.name!r}: no model {entry.model!r} in the registry")
    STUDENT_REGISTRY[entry.name] = entry
    return entry


PAPER = "the paper's R(2+1)D-18 + spatio-temporal attention + CE and sparse-center-loss heads"
register(ModelEntry("dfer_r2plus1d_18", "dfer", "r2plus1d_18", 1.0, PAPER))
register(ModelEntry("dfer_r2plus1d_18_half", "dfer", "r2plus1d_18", 0.5,
                    f"{PAPER}, at half width (half the channels in every stage; about 4x fewer MACs)"))
register(ModelEntry("r2plus1d_18", "baseline", "r2plus1d_18", 1.0, "torchvision R(2+1)D-18, plain CE (a baseline of the paper)"))
register(ModelEntry("r3d_18", "baseline", "r3d_18", 1.0, "torchvision R3D-18 (3D convolutions), plain CE"))
register(ModelEntry("mc3_18", "baseline", "mc3_18", 1.0, "torchvision MC3-18 (mixed 3D/2D convolutions), plain CE"))

# At the paper's 16x112x112 (40.6 GMACs): frames-half 8x112x112 (2.0x fewer MACs), low-res 16x80x80 (1.96x),
# narrow 3.97x, narrow-frames-half 7.9x, narrow-low-res 7.8x (`dfer profile --students`).
register_student(StudentEntry("frames-half", "dfer_r2plus1d_18", 0.5, 1.0, "half the frames"))
register_student(StudentEntry("low-res", "dfer_r2plus1d_18", 1.0, 5 / 7, "5/7 of the side (80 px at the paper's clip)"))
register_student(StudentEntry("narrow", "dfer_r2plus1d_18_half", 1.0, 1.0, "half the channels"))
register_student(StudentEntry("narrow-frames-half", "dfer_r2plus1d_18_half", 0.5, 1.0, "half the channels and frames"))
register_student(StudentEntry("narrow-low-res", "dfer_r2plus1d_18_half", 1.0, 5 / 7, "half the channels, 5/7 the side"))

MODEL_NAMES = tuple(REGISTRY)
BASELINES = tuple(n for n, e in REGISTRY.items() if e.family == "baseline")
ARCHS = tuple(dict.fromkeys(e.arch for e in REGISTRY.values()))
STUDENTS = tuple(STUDENT_REGISTRY)


def entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise ConfigError(f"model must be one of {', '.join(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


__all__ = ["ARCHS", "BASELINES", "MODEL_NAMES", "REGISTRY", "STUDENTS", "STUDENT_REGISTRY", "ModelEntry",
           "StudentEntry", "entry", "register", "register_student"]
