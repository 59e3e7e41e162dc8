"""Training configuration: dataclasses with the paper's defaults, a YAML file, command-line overrides.

Parsing and type checking are OmegaConf's (structured configs): a YAML file and `key=value`
overrides (`optim.lr=1e-4`, `data.balanced=true`) are merged onto the dataclass defaults, unknown
keys and wrong types are refused with the offending key named. The resolved config is saved as
`config.yaml` in every run folder and as a plain dict in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dfer.errors import ConfigError
from dfer.models import ModelConfig
from dfer.models.registry import STUDENTS
from dfer.options import CALIBRATION_CLIPS, MAX_DROP_POINTS, flag
from dfer.options import TRAIN_PRECISIONS as PRECISIONS

SCHEDULES = ("cosine", "step", "constant")
MONITORS = ("uar", "war", "loss")


@dataclass
class DataConfig:
    protocol: str | None = flag(None, kind="text", help="split protocol of splits.json (default: the cache's default)")
    num_frames: int = flag(16, kind="positive_int", name="clip-frames", help="T of the input clips")
    size: int = flag(112, kind="side", name="clip-size", help="H = W of the input clips")
    batch_size: int = flag(32, kind="positive_int", help="clips per optimizer step (per process)")
    eval_batch_size: int = 0  # 0: same as batch_size
    workers: int = flag(2, kind="nonneg_int", help="data loader processes")
    # class-balanced sampling (with replacement), for imbalanced sets such as DAiSEE
    balanced: bool = flag(False, kind="switch", help="class-balanced sampling")
    augment: bool = True  # random resized crop, flip, colour jitter, temporal jitter
    crop_scale: tuple[float, float] = (0.7, 1.0)  # area fraction of the random resized crop
    flip: float = 0.5
    color_jitter: float = 0.3  # brightness, contrast and saturation strength


@dataclass
class OptimConfig:
    lr: float = flag(1e-3, kind="positive_float", help="Adam's learning rate, as the paper")
    weight_decay: float = 0.0
    epochs: int = flag(30, kind="positive_int", help="epochs to train")
    schedule: str = "cosine"  # cosine | step | constant, stepped per iteration
    warmup_epochs: float = 0.0  # linear warm-up from 0
    step_epochs: int = 10  # step schedule: multiply lr by step_gamma every step_epochs
    step_gamma: float = 0.1
    grad_clip: float = 0.0  # max global grad norm; 0: off


@dataclass
class LossConfig:
    # CE + lam * sparse center loss; DACL's 0.01, 1.0 is the paper's eq. (6) literally
    lam: float = flag(0.01, kind="nonneg_float", help="weight of the sparse center loss")
    center_lr: float = 0.5  # the centers' own SGD rate (alpha)
    class_weighted: bool = flag(False, kind="switch", help="inverse-frequency weighted cross-entropy")
    label_smoothing: float = 0.0


@dataclass
class RuntimeConfig:
    seed: int = flag(0, kind="nonneg_int", help="seed of the data order, augmentation and initialisation")
    accelerator: str = flag("auto", choices=("auto", "cpu", "cuda"), help="where to train")
    # processes (GPUs, or CPU processes with gloo) on this node
    devices: int = flag(1, kind="positive_int", help="processes on this node (DDP through Lightning Fabric)")
    num_nodes: int = 1
    strategy: str = "auto"  # auto (ddp when devices > 1) | ddp | ddp_spawn
    precision: str = flag("auto", choices=PRECISIONS, help="Lightning Fabric's; auto: bf16-mixed on a GPU that has "
                                                               "it, else 32-true")
    channels_last: bool = False  # channels_last_3d memory format (GPU)
    compile: bool = False  # torch.compile the network
    threads: int = 0  # torch CPU threads per process; 0: torch's default
    checkpoint_every: int = 0  # also save last.pt every N optimizer steps (0: at epoch ends only)
    progress: bool = True
    tensorboard: bool = True


@dataclass
class EvalConfig:
    monitor: str = "uar"  # validation metric that selects the checkpoint: uar | war | loss
    patience: int = flag(0, kind="nonneg_int", help="early stopping patience in epochs (0: off)")
    peer_best_on_test: bool = flag(False, kind="switch", help="also report the best epoch picked on test (peers' "
                                                              "optimistic protocol), labelled as such")


@dataclass
class DeployConfig:
    int8: bool = flag(True, kind="off", help="skip the OpenVINO int8 export of the selected checkpoint at the end of "
                                             "each fold")  # best-int8.xml
    int8_max_drop: float = MAX_DROP_POINTS  # accepted on the validation part when WAR and UAR each drop at most this
    calibration_clips: int = CALIBRATION_CLIPS  # from the training part


@dataclass
class DistillConfig:
    """`dfer distill`: a student learning from a trained teacher (dfer.engine.distill)."""

    teacher: str = ""  # the teacher checkpoint (set by dfer distill; recorded in every checkpoint)
    student: str = flag("narrow", choices=tuple(STUDENTS),
                        help="the student's network and clip relative to the teacher's (narrow: half the channels, "
                             "about 4x fewer MACs; `dfer profile --students` lists each one's cost)")
    # 1 - alpha on the labels' cross-entropy
    alpha: float = flag(0.5, kind="fraction", help="weight of the KL term to the teacher")
    temperature: float = flag(4.0, kind="positive_float", help="softening of both distributions in the KL term")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    weights: str | None = flag(None, kind="text", help="backbone init: KINETICS400_V1 (torchvision download), a "
                                                       "state-dict file, or none")
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.optim.schedule in SCHEDULES, f"optim.schedule must be one of {SCHEDULES}"),
            (self.eval.monitor in MONITORS, f"eval.monitor must be one of {MONITORS}"),
            (self.runtime.precision in PRECISIONS, f"runtime.precision must be one of {PRECISIONS}"),
            (self.optim.epochs >= 1, "optim.epochs must be >= 1"),
            (self.data.batch_size >= 1, "data.batch_size must be >= 1"),
            (self.data.num_frames >= 1 and self.data.size >= 16, "data.num_frames >= 1 and data.size >= 16"),
            (self.runtime.devices >= 1, "runtime.devices must be >= 1"),
            (0.0 <= self.distill.alpha <= 1.0, f"distill.alpha must be between 0 and 1, got {self.distill.alpha}"),
            (self.distill.temperature > 0, f"distill.temperature must be > 0, got {self.distill.temperature}"),
            (self.distill.student in STUDENTS, f"distill.student must be one of {', '.join(STUDENTS)}, "
                                               f"got {self.distill.student!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.weights in ("", "none", "None"):
            self.weights = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(x: Any) -> Any:
    """Tuples to lists, recursively, so the dict is YAML/JSON and torch.load(weights_only) friendly."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), base: dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults <- `base` (e.g. a checkpoint's config) <- YAML file <- `key=value` overrides."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = OmegaConf.structured(TrainConfig)
        if base:
            cfg = OmegaConf.merge(cfg, base)
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"{p}: config file not found")
            try:
                loaded = OmegaConf.load(p)
            except Exception as exc:
                raise ConfigError(f"{p}: not a readable YAML config ({exc})") from None
            cfg = OmegaConf.merge(cfg, loaded)
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"overrides must look like key=value (e.g. optim.lr=1e-4), got {bad}")
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        out = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid training config{where}: {str(exc).splitlines()[0]} "
                          f"(key: {getattr(exc, 'full_key', '?')})") from None
    except ValueError as exc:  # ModelConfig's own checks
        raise ConfigError(f"invalid training config: {exc}") from None
    return out


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    return load_config(base=d)


def dump_yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
