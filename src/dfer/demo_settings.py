"""`DemoSettings`: what `dfer demo` runs with (light: the CLI builds its flags from it without importing the
demo's training and inference)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dfer.errors import ConfigError


@dataclass
class DemoSettings:
    """Defaults finish in about 10 minutes on a 2-core CPU limited to AVX2 (see README); all reduce
    for a quick check.

    Why these: training from scratch (no pretrained weights offline) is data-starved, so more
    subjects beat more epochs at equal compute; a tight crop (margin 0.1) at 32 px keeps the
    expression cues as large as a 0.2 margin at 40 px for 0.64x the cost; 3 folds leave each
    fold enough epochs inside the time budget. The network is the paper's at half width (half the
    channels in every stage; the attention block and both heads kept): it trains 2.7x faster than
    the full width at this clip (27.7 vs 10.4 clips/s) and keeps the demo's point (the temporal
    model beats the same model on shuffled frames by 17 points; the full width: 19).
    """

    model: str = "dfer_r2plus1d_18_half"  # dfer.models registry name; dfer_r2plus1d_18: the paper's full width
    clips_per_class: int = 96  # subjects; each performs all 7 classes
    frames: int = 32  # per synthetic video (1.28 s at 25 fps)
    folds: int = 3  # subject-grouped stratified k-fold
    epochs: int = 7
    clip_frames: int = 8  # T of the network input (the paper: 16)
    clip_size: int = 32  # H = W of the network input (the paper: 112)
    crop_size: int = 40  # side of the cached face crops
    margin: float = 0.1  # face crop margin on each side
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    workers: int = 2  # processes for synthesis and face preparation
    extra: list[str] = field(default_factory=list)  # further `key=value` training overrides

    def __post_init__(self) -> None:
        checks = [
            (self.folds >= 2, f"folds must be >= 2, got {self.folds}"),
            (self.clips_per_class >= self.folds + 1,
             f"clips_per_class (subjects) must be at least folds + 1 = {self.folds + 1} so every fold has "
             f"training, validation and test subjects, got {self.clips_per_class}"),
            (self.frames >= 4, f"frames must be >= 4, got {self.frames}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.clip_frames >= 1 and self.clip_size >= 16, f"clip must be >= 1 x 16, got {self.clip_frames}x{self.clip_size}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"demo settings: {msg}")
