"""The classic posed-sequence sets, where every clip runs from a neutral face to the apex of one
expression: the Extended Cohn-Kanade set (CK+) and Oulu-CASIA NIR&VIS.

Both use the field's subject-independent 10-fold protocol, made here by one rule: the subjects
that have at least one kept sequence, in ascending id order, are dealt to folds 1..10 in turn
(the i-th subject, counting from 0, goes to fold i mod 10 + 1). Fold k tests on its subjects and
trains on the others; `dfer prepare` carves the validation part out of each training part by
subject, so no subject is in two parts of a fold.
"""

from __future__ import annotations

import re
from pathlib import Path

from dfer.data.spec import DFEW_CLASSES, ClipRecord, DatasetSpec
from dfer.data.video import IMAGE_EXTS, list_frame_files
from dfer.errors import DatasetError

POSED_FOLDS = 10

# CK+ emotion codes (Emotion/*_emotion.txt): 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear,
# 5 happy, 6 sadness, 7 surprise. Only 327 of the 593 sequences carry one.
CKPLUS_CODES = ["neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
CKPLUS_CLASSES = CKPLUS_CODES[1:]  # the 7 labelled classes (no sequence of the release is labelled neutral)
OULU_CLASSES = ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
OULU_SENSORS = {"vl": "VL", "nir": "NI"}
OULU_LIGHTS = {"strong": "Strong", "weak": "Weak", "dark": "Dark"}
# Both sets' class names in DFEW's label order (--classes dfew); contempt has no DFEW class.
TO_DFEW = {"neutral": "Neutral", "anger": "Angry", "disgust": "Disgust", "fear": "Fear", "happy": "Happy",
           "happiness": "Happy", "sadness": "Sad", "surprise": "Surprise"}


def subject_folds(records: list[ClipRecord], k: int = POSED_FOLDS) -> list[dict[str, list[str]]]:
    """Subjects in ascending id order dealt to k folds in turn; fold j tests on its subjects."""
    subjects = sorted({r.subject for r in records}, key=_natural)
    if len(subjects) < k:
        raise DatasetError(f"{len(subjects)} subjects cannot make {k} subject-independent folds")
    fold_of = {s: i % k for i, s in enumerate(subjects)}
    folds = []
    for j in range(k):
        test = [r.clip_id for r in records if fold_of[r.subject] == j]
        train = [r.clip_id for r in records if fold_of[r.subject] != j]
        folds.append({"name": str(j + 1), "train": train, "test": test})
    return folds


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _subfolders(folder: Path) -> list[Path]:
    """Sub-folders in natural order; stray files (.DS_Store, notes) are ignored."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural(p.name))


def _class_names(classes: str | None, dataset: str, native: list[str]) -> list[str]:
    """The set's own classes (`classes` None or the set's name) or DFEW's 7 (`dfew`)."""
    if classes not in (None, dataset, "dfew"):
        raise DatasetError(f"--classes for {dataset} must be {dataset} or dfew, got {classes!r}")
    return DFEW_CLASSES if classes == "dfew" else native


# -- CK+ -------------------------------------------------------------------------------------
def _read_ckplus_code(path: Path) -> int:
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{path}: expected one number (an emotion code 0..7), got {text[:40]!r}") from None
    if value != int(value) or not 0 <= value <= 7:
        raise DatasetError(f"{path}: emotion code {text} is outside CK+'s 0..7 "
                           f"({', '.join(f'{i} {n}' for i, n in enumerate(CKPLUS_CODES))})")
    return int(value)


def _ckplus_label(seq_labels: Path) -> tuple[int, int] | None:
    """(emotion code, apex frame number) of one sequence's label folder, None when it has no label."""
    files = sorted(seq_labels.glob("*_emotion.txt")) if seq_labels.is_dir() else []
    if not files:
        return None
    if len(files) > 1:
        raise DatasetError(f"{seq_labels}: {len(files)} emotion files for one sequence; expected one")
    m = re.search(r"_(\d+)_emotion\.txt$", files[0].name)
    if m is None:
        raise DatasetError(f"{files[0]}: the name should end in _<apex frame>_emotion.txt")
    return _read_ckplus_code(files[0]), int(m.group(1))


def ckplus(root: str | Path, classes: str | None = None) -> DatasetSpec:
    """CK+ as distributed: `cohn-kanade-images/S005/001/S005_001_00000001.png` and
    `Emotion/S005/001/S005_001_00000011_emotion.txt` (one float code). A clip is a labelled
    sequence from its first (neutral) frame to the apex frame its label file names."""
    root = Path(root)
    images, emotion = root / "cohn-kanade-images", root / "Emotion"
    for d, what in ((images, "cohn-kanade-images"), (emotion, "Emotion")):
        if not d.is_dir():
            raise DatasetError(f"{root}: not a CK+ folder: {what}/ not found (expected cohn-kanade-images/S005/001/"
                               f"S005_001_00000001.png and Emotion/S005/001/S005_001_00000011_emotion.txt)")
    class_names = _class_names(classes, "ckplus", CKPLUS_CLASSES)
    records: list[ClipRecord] = []
    sequences = unlabelled = dropped = 0
    failures: list[tuple[ClipRecord, str]] = []
    for subject in _subfolders(images):
        for seq in _subfolders(subject):
            sequences += 1
            label = _ckplus_label(emotion / subject.name / seq.name)
            if label is None:
                unlabelled += 1
                continue
            code, apex = label
            name = CKPLUS_CODES[code]
            cls = TO_DFEW.get(name) if classes == "dfew" else name
            if cls not in class_names:
                dropped += 1
                continue
            rec = ClipRecord(f"{subject.name}_{seq.name}", str(seq), class_names.index(cls), subject.name)
            frames = list_frame_files(seq)
            numbers = [int(m.group(1)) if (m := re.search(r"_(\d+)$", f.stem)) else -1 for f in frames]
            if apex not in numbers:
                failures.append((rec, f"{seq}: the apex frame {apex} named by its label file is not in the sequence"))
                continue
            rec.stop = numbers.index(apex) + 1
            records.append(rec)
    if sequences == 0:
        raise DatasetError(f"{images}: no sequences found (expected S005/001/S005_001_00000001.png)")
    notes = [f"CK+: {sequences} sequences in {len(_subfolders(images))} subjects; {sequences - unlabelled} labelled, "
             f"{unlabelled} without a label skipped"]
    if dropped:
        notes.append(f"CK+: {dropped} sequences of a class outside --classes {classes} dropped and counted "
                     f"(contempt has no DFEW class)")
    if not records:
        raise DatasetError(f"{emotion}: no labelled sequence matches the images under {images}")
    return DatasetSpec("ckplus", class_names, records, {"official": subject_folds(records)}, "dlib", grouped=True,
                       default_protocol="official", notes=notes, failures=failures)


# -- Oulu-CASIA ------------------------------------------------------------------------------
def oulu(root: str | Path, sensor: str = "vl", light: str = "strong", classes: str | None = None) -> DatasetSpec:
    """Oulu-CASIA NIR&VIS: `OriginalImg/VL/Strong/P001/Anger/000.jpeg`; each expression folder is one
    sequence from neutral to apex. `sensor` vl | nir (folder NI), `light` strong | weak | dark."""
    root = Path(root)
    if sensor not in OULU_SENSORS or light not in OULU_LIGHTS:
        raise DatasetError(f"Oulu-CASIA sensor must be one of {', '.join(OULU_SENSORS)} and light one of "
                           f"{', '.join(OULU_LIGHTS)}, got {sensor!r} / {light!r}")
    base = root / "OriginalImg" / OULU_SENSORS[sensor] / OULU_LIGHTS[light]
    if not base.is_dir():
        raise DatasetError(f"{root}: not an Oulu-CASIA folder: {base.relative_to(root)}/ not found "
                           f"(expected OriginalImg/VL/Strong/P001/Anger/000.jpeg)")
    class_names = _class_names(classes, "oulu", OULU_CLASSES)
    records, ignored = [], []
    for subject in _subfolders(base):
        for seq in _subfolders(subject):
            native = next((c for c in OULU_CLASSES if c.lower() == seq.name.lower()), None)
            if native is None:
                ignored.append(f"{subject.name}/{seq.name}")
                continue
            if not any(p.suffix.lower() in IMAGE_EXTS for p in seq.iterdir()):
                ignored.append(f"{subject.name}/{seq.name} (no images)")
                continue
            cls = TO_DFEW[native.lower()] if classes == "dfew" else native
            records.append(ClipRecord(f"{subject.name}_{native}", str(seq), class_names.index(cls), subject.name))
    if not records:
        raise DatasetError(f"{base}: no sequences found (expected P001/Anger/000.jpeg)")
    subjects = len({r.subject for r in records})
    notes = [f"Oulu-CASIA {OULU_SENSORS[sensor]}/{OULU_LIGHTS[light]}: {len(records)} sequences of {subjects} subjects"]
    if ignored:
        notes.append(f"Oulu-CASIA: {len(ignored)} folders that are not one of the 6 expressions ignored, "
                     f"e.g. {ignored[0]}")
    name = f"oulu-{sensor}-{light}"
    return DatasetSpec(name, class_names, records, {"official": subject_folds(records)}, "dlib", grouped=True,
                       default_protocol="official", notes=notes)
