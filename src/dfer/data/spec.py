"""What a dataset adapter returns: one record per clip, the class names and the official splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dfer.errors import DatasetError

DFEW_CLASSES = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
FERV39K_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
MAFW_CLASSES = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
                "helplessness", "disappointment"]


@dataclass
class ClipRecord:
    clip_id: str
    source: str  # a video file or a folder of frames
    label: int
    subject: str = ""
    stop: int | None = None  # read only the source's first `stop` frames (a sequence cut at its apex)


@dataclass
class DatasetSpec:
    name: str
    class_names: list[str]
    records: list[ClipRecord]
    official: dict[str, list[dict[str, list[str]]]] = field(default_factory=dict)  # protocol -> folds
    default_detector: str = "dlib"
    grouped: bool = False  # True when subjects are known (split by subject)
    default_protocol: str | None = None  # None: official when it has several folds, else k-fold
    synthetic: bool = False  # dfer synth's cartoon faces: every model trained on it says so
    notes: list[str] = field(default_factory=list)  # what the adapter skipped or decided, shown by dfer prepare
    failures: list[tuple[ClipRecord, str]] = field(default_factory=list)  # clips the adapter could not use, and why


def split_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a headerless, space-separated list; CRLF or LF; blank lines skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the split file ({exc})") from None
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
