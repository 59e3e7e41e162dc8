"""Dataset adapters: the real on-disk layouts of DFEW, AFEW, DAiSEE, MAFW, FERV39k, CK+ and Oulu-CASIA
(dfer.data.posed), other projects' split lists (dfer.data.peer_lists), a folder per class and a CSV manifest.

Each adapter returns a `DatasetSpec`: class names, one `ClipRecord` per clip, the dataset's
official splits (lists of clip ids) and the face detector its sources need by default.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from dfer.data.cache import safe_id
from dfer.data.peer_lists import lists
from dfer.data.posed import ckplus, oulu
from dfer.data.spec import DFEW_CLASSES, FERV39K_CLASSES, MAFW_CLASSES, ClipRecord, DatasetSpec, split_lines
from dfer.data.video import IMAGE_EXTS, VIDEO_EXTS
from dfer.errors import DatasetError

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
SYNTHETIC_MARK = "SYNTHETIC.txt"  # written by dfer synth beside its manifest


def is_synthetic(folder: Path) -> bool:
    """dfer synth's cartoon faces: models trained on them must say so wherever they show labels."""
    return (folder / SYNTHETIC_MARK).is_file()


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
    return DatasetSpec(root.name or "folder", classes, records, synthetic=is_synthetic(root))


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
    return DatasetSpec(csv_path.stem, classes, records, grouped=grouped, synthetic=is_synthetic(csv_path.parent))


# -- MAFW ----------------------------------------------------------------------------------
MAFW_SOURCES = ("auto", "clips", "frames", "faces")  # auto: frames when data/frames exists, else clips


def mafw(root: str | Path, source: str = "auto") -> DatasetSpec:
    """MAFW, single-label protocol: `Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt` with
    lines like `03747.mp4 anger` (CRLF); clips `data/clips/NNNNN.mp4`, frames `data/frames/NNNNN/`, or
    face crops `data/faces/NNNNN/`. The compound protocol (labels joined by `_`) is not read here."""
    root = Path(root)
    split_root = root / "Train & Test Set" / "single" / "no_caption"
    _require_dir(split_root, "MAFW single-label split folder 'Train & Test Set/single/no_caption'")
    if source == "auto":
        source = "frames" if (root / "data" / "frames").is_dir() else "clips"
    if source not in MAFW_SOURCES[1:]:
        raise DatasetError(f"MAFW source must be one of {', '.join(MAFW_SOURCES)}, got {source!r}")
    labels: dict[str, int] = {}
    folds = []
    for k in range(1, 6):
        fold = {"name": str(k)}
        for part in ("train", "test"):
            path = split_root / f"set_{k}" / f"{part}.txt"
            if not path.is_file():
                raise DatasetError(f"{path}: MAFW split file not found")
            ids = []
            for n, fields in split_lines(path):
                if len(fields) != 2:
                    raise DatasetError(f"{path}:{n}: expected '<clip> <class>', got {' '.join(fields)!r}")
                name, cls = Path(fields[0]).stem, fields[1].lower()
                if cls not in MAFW_CLASSES:
                    raise DatasetError(f"{path}:{n}: class {fields[1]!r} is not one of MAFW's 11 ({', '.join(MAFW_CLASSES)})")
                labels[name] = MAFW_CLASSES.index(cls)
                ids.append(name)
            fold[part] = ids
        folds.append(fold)
    base = root / "data" / source
    records = [ClipRecord(name, str(base / f"{name}.mp4" if source == "clips" else base / name), labels[name])
               for name in sorted(labels)]
    return DatasetSpec("mafw", MAFW_CLASSES, records, {"official": folds}, "none" if source == "faces" else "dlib",
                       default_protocol="official")


# -- FERV39k -------------------------------------------------------------------------------


def ferv39k(root: str | Path) -> DatasetSpec:
    """FERV39k: face-crop frames `2_ClipsforFaceCrop/<Scene>/<Emotion>/<NNNN>/*.jpg`; official split
    `4_setups/All_scenes/{train_All,test_All}.csv`: no header despite the name, lines `Action/Sad/0010 Sad`."""
    root = Path(root)
    setups = root / "4_setups" / "All_scenes"
    _require_dir(setups, "FERV39k split folder 4_setups/All_scenes")
    frames = root / "2_ClipsforFaceCrop"
    records, parts = [], {}
    for part, fname in (("train", "train_All.csv"), ("test", "test_All.csv")):
        path = setups / fname
        if not path.is_file():
            raise DatasetError(f"{path}: FERV39k split file not found")
        ids = []
        for n, fields in split_lines(path):  # every line is a clip: there is no header to skip
            if len(fields) != 2:
                raise DatasetError(f"{path}:{n}: expected '<Scene/Emotion/NNNN> <Emotion>', got {' '.join(fields)!r}")
            rel, cls = fields
            if cls not in FERV39K_CLASSES:
                raise DatasetError(f"{path}:{n}: class {cls!r} is not one of FERV39k's {', '.join(FERV39K_CLASSES)}")
            cid = safe_id(rel)
            records.append(ClipRecord(cid, str(frames / rel), FERV39K_CLASSES.index(cls)))
            ids.append(cid)
        parts[part] = ids
    return DatasetSpec("ferv39k", FERV39K_CLASSES, records, {"official": [{"name": "1", **parts}]}, "none",
                       default_protocol="official")


_ADAPTERS = {"dfew": dfew, "afew": afew, "daisee": daisee, "mafw": mafw, "ferv39k": ferv39k, "ckplus": ckplus,
             "oulu": oulu, "lists": lists, "folder": folder, "manifest": manifest}
ADAPTERS = tuple(_ADAPTERS)


def load_spec(kind: str, root: str | Path, **kw) -> DatasetSpec:
    if kind not in _ADAPTERS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose from {ADAPTERS}")
    return _ADAPTERS[kind](root, **kw)
