"""Dataset adapters: the real on-disk layouts of DFEW, AFEW, DAiSEE, a folder per class and a CSV manifest.

Each adapter returns a `DatasetSpec`: class names, one `ClipRecord` per clip, the dataset's
official splits (lists of clip ids) and the face detector its sources need by default.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from dfer.data.cache import safe_id
from dfer.data.video import IMAGE_EXTS, VIDEO_EXTS
from dfer.errors import DatasetError

DFEW_CLASSES = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
DAISEE_LEVELS = ["very low", "low", "high", "very high"]
DAISEE_TARGETS = ("Engagement", "Boredom", "Confusion", "Frustration")
DFEW_SOURCES = ("auto", "frames", "original")  # auto: frames when Clip/clip_224x224 exists
# Folder spellings seen in copies of AFEW, lower-cased, mapped to the DFEW class names.
CLASS_ALIASES = {
    "angry": "Angry", "anger": "Angry",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear",
    "happy": "Happy", "happiness": "Happy",
    "neutral": "Neutral",
    "sad": "Sad", "sadness": "Sad",
    "surprise": "Surprise", "surprised": "Surprise",
}


@dataclass
class ClipRecord:
    clip_id: str
    source: str  # a video file or a folder of frames
    label: int
    subject: str = ""


@dataclass
class DatasetSpec:
    name: str
    class_names: list[str]
    records: list[ClipRecord]
    official: dict[str, list[dict[str, list[str]]]] = field(default_factory=dict)  # protocol -> folds
    default_detector: str = "dlib"
    grouped: bool = False  # True when subjects are known (split by subject)


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} not found")


def _find_video(folder: Path, stem: str) -> Path | None:
    for ext in sorted(VIDEO_EXTS):
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def _is_source(p: Path) -> bool:
    if p.is_file():
        return p.suffix.lower() in VIDEO_EXTS
    return p.is_dir() and any(c.suffix.lower() in IMAGE_EXTS for c in p.iterdir())


# -- DFEW ----------------------------------------------------------------------------------
def _dfew_split_file(folder: Path, k: int) -> Path:
    for name in (f"set_{k}.csv", f"{folder.name.split('(')[0]}_set_{k}.csv"):
        if (folder / name).is_file():
            return folder / name
    matches = sorted(folder.glob(f"*set_{k}.csv"))
    if matches:
        return matches[0]
    raise DatasetError(f"{folder}: split file set_{k}.csv (or *_set_{k}.csv) not found")


def _read_dfew_csv(path: Path) -> list[tuple[str, int]]:
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        if "video_name" not in fields or "label" not in fields:
            raise DatasetError(f"{path}: expected header video_name,label, got {reader.fieldnames}")
        for line, r in enumerate(reader, start=2):
            name, label = (r[fields["video_name"]] or "").strip(), (r[fields["label"]] or "").strip()
            try:
                lab = int(float(label))
            except ValueError:
                raise DatasetError(f"{path}:{line}: label {label!r} is not a number") from None
            if not 1 <= lab <= 7:
                raise DatasetError(f"{path}:{line}: label {lab} outside DFEW's 1-7")
            rows.append((name.zfill(5) if name.isdigit() else name, lab - 1))
    return rows


def dfew(root: str | Path, source: str = "auto") -> DatasetSpec:
    """DFEW: EmoLabel_DataSplit/{train,test}(single-labeled)/set_N.csv; frames in Clip/clip_224x224/<id>/."""
    root = Path(root)
    split_root = root / "EmoLabel_DataSplit"
    _require_dir(split_root, "DFEW split folder EmoLabel_DataSplit")
    frames_dir = root / "Clip" / "clip_224x224"
    video_dir = root / "Clip" / "original"
    if source == "auto":
        source = "frames" if frames_dir.is_dir() else "original"
    if source not in DFEW_SOURCES[1:]:
        raise DatasetError(f"DFEW source must be frames or original, got {source!r}")
    labels: dict[str, int] = {}
    folds = []
    for k in range(1, 6):
        fold = {"name": str(k)}
        for part, folder in (("train", "train(single-labeled)"), ("test", "test(single-labeled)")):
            d = split_root / folder
            _require_dir(d, f"DFEW split folder {folder}")
            rows = _read_dfew_csv(_dfew_split_file(d, k))
            for name, lab in rows:
                if labels.setdefault(name, lab) != lab:
                    raise DatasetError(f"DFEW clip {name} has two labels ({labels[name]} and {lab}) across split files")
            fold[part] = [name for name, _ in rows]
        folds.append(fold)
    records = []
    for name in sorted(labels):
        if source == "frames":
            src = frames_dir / name
        else:
            src = _find_video(video_dir, name) or video_dir / f"{name}.mp4"
        records.append(ClipRecord(name, str(src), labels[name]))
    return DatasetSpec("dfew", DFEW_CLASSES, records, {"official": folds}, "none" if source == "frames" else "dlib")


# -- AFEW ----------------------------------------------------------------------------------
def _class_folders(split_dir: Path) -> list[tuple[Path, str]]:
    out = []
    for d in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        name = CLASS_ALIASES.get(d.name.strip().lower())
        if name is None:
            raise DatasetError(f"{d}: unknown AFEW class folder (expected one of {sorted(set(CLASS_ALIASES.values()))})")
        out.append((d, name))
    return out


def afew(root: str | Path) -> DatasetSpec:
    """AFEW 8.0: Train_AFEW/<Class>/*.avi and Val_AFEW/<Class>/*.avi (aliases like Anger, Happiness)."""
    root = Path(root)
    records, parts = [], {"train": [], "test": []}
    for split_name, part in (("Train_AFEW", "train"), ("Val_AFEW", "test")):
        split_dir = root / split_name
        _require_dir(split_dir, f"AFEW folder {split_name}")
        for d, cls in _class_folders(split_dir):
            for src in sorted(p for p in d.iterdir() if _is_source(p)):
                cid = safe_id(f"{part}-{src.stem}")
                records.append(ClipRecord(cid, str(src), DFEW_CLASSES.index(cls)))
                parts[part].append(cid)
    if not records:
        raise DatasetError(f"{root}: no AFEW videos found under Train_AFEW/ and Val_AFEW/")
    return DatasetSpec("afew", DFEW_CLASSES, records, {"official": [{"name": "1", **parts}]}, "dlib")


# -- DAiSEE --------------------------------------------------------------------------------
def daisee(root: str | Path, target: str = "Engagement") -> DatasetSpec:
    """DAiSEE: Labels/{Train,Validation,Test}Labels.csv, videos DataSet/<Split>/<Subject>/<Clip>/<Clip>.avi."""
    root = Path(root)
    target = target.strip().capitalize()
    if target not in DAISEE_TARGETS:
        raise DatasetError(f"DAiSEE target must be one of {DAISEE_TARGETS}, got {target!r}")
    labels_dir = root / "Labels"
    _require_dir(labels_dir, "DAiSEE Labels folder")
    records, parts = [], {}
    for split in ("Train", "Validation", "Test"):
        path = labels_dir / f"{split}Labels.csv"
        if not path.is_file():
            raise DatasetError(f"{path}: DAiSEE label file not found")
        ids = []
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]  # the real header ends with a space
            if "ClipID" not in header or target not in header:
                raise DatasetError(f"{path}: expected columns ClipID and {target}, got {header}")
            ci, ti = header.index("ClipID"), header.index(target)
            for line, r in enumerate(reader, start=2):
                if not r or not r[ci].strip():
                    continue
                clip = r[ci].strip()
                stem = Path(clip).stem
                try:
                    level = int(r[ti])
                except (ValueError, IndexError):
                    raise DatasetError(f"{path}:{line}: {target} level {r[ti:ti + 1]} is not 0-3") from None
                if not 0 <= level <= 3:
                    raise DatasetError(f"{path}:{line}: {target} level {level} is not 0-3")
                subject = stem[:6]
                folder = root / "DataSet" / split / subject / stem
                src = _find_video(folder, stem) or folder / clip
                records.append(ClipRecord(safe_id(stem), str(src), level, subject))
                ids.append(safe_id(stem))
        parts[split.lower()] = ids
    official = [{"name": "1", "train": parts["train"], "val": parts["validation"], "test": parts["test"]}]
    return DatasetSpec(f"daisee-{target.lower()}", DAISEE_LEVELS, records, {"official": official}, "dlib", grouped=True)


# -- folder per class and manifest ---------------------------------------------------------
def folder(root: str | Path) -> DatasetSpec:
    """ROOT/<class name>/<video file or frame folder>; classes in sorted folder order."""
    root = Path(root)
    _require_dir(root, "dataset folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root}: no class folders found")
    records = []
    for k, cls in enumerate(classes):
        for src in sorted(p for p in (root / cls).iterdir() if _is_source(p)):
            records.append(ClipRecord(safe_id(f"{cls}-{src.stem}"), str(src), k))
    if not records:
        raise DatasetError(f"{root}: class folders hold no videos or frame folders")
    return DatasetSpec(root.name or "folder", classes, records)


def manifest(csv_path: str | Path) -> DatasetSpec:
    """CSV with header path,label[,subject][,id]; paths relative to the CSV's folder; labels are names or ints."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: manifest not found")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [(h or "").strip().lower() for h in reader.fieldnames or []]
        if "path" not in fields or "label" not in fields:
            raise DatasetError(f"{csv_path}: expected a header with path,label[,subject], got {reader.fieldnames}")
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in reader]
    labels = [r["label"] for r in rows]
    if all(re.fullmatch(r"\d+", v) for v in labels):
        n = max(int(v) for v in labels) + 1 if labels else 0
        classes, to_int = [str(k) for k in range(n)], int
    else:
        names = set(labels)
        # DFEW's own class order when the labels are its class names (dfer synth writes them), else sorted.
        classes = [c for c in DFEW_CLASSES if c in names] if names <= set(DFEW_CLASSES) else sorted(names)
        to_int = classes.index
    records = []
    for r in rows:
        p = Path(r["path"])
        src = p if p.is_absolute() else csv_path.parent / p
        cid = safe_id(r.get("id") or str(Path(r["path"]).with_suffix("")))
        records.append(ClipRecord(cid, str(src), to_int(r["label"]), r.get("subject", "")))
    grouped = any(r.subject for r in records)
    return DatasetSpec(csv_path.stem, classes, records, grouped=grouped)


ADAPTERS = ("dfew", "afew", "daisee", "folder", "manifest")


def load_spec(kind: str, root: str | Path, **kw) -> DatasetSpec:
    fns = {"dfew": dfew, "afew": afew, "daisee": daisee, "folder": folder, "manifest": manifest}
    if kind not in fns:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose from {ADAPTERS}")
    return fns[kind](root, **kw)
