"""Tiny synthetic fixtures in real on-disk formats, written to a temp dir by the tests."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from dfer.data.video import write_video
from dfer.synth import Expression, Identity, draw_face


def face_frames(n: int, size=(112, 96), faces: int = 1, seed: int = 0, smile_to: float = 1.0, face: bool = True,
                background=(70, 90, 110), skin=(210, 175, 150)):
    """n RGB frames (H, W, 3) with `faces` drawn faces drifting slowly; expression unfolds over time."""
    w, h = size
    idents = [Identity(skin=skin) for _ in range(faces)]
    bg = np.full((h, w, 3), background, np.uint8)
    scale = 0.42 if faces == 1 else 0.3
    frames = []
    for t in range(n):
        img = bg.copy()
        if face:
            for k in range(faces):
                cx = w * (k + 1) / (faces + 1) + 2 * np.sin(t / 5)
                cy = h / 2 + 1.5 * np.cos(t / 7)
                e = Expression(smile=smile_to * t / max(1, n - 1))
                draw_face(img, (cx, cy), scale, e, idents[k])
        else:
            cv2.circle(img, (int(w / 2 + 10 * np.sin(t / 3)), h // 2), 12, (200, 60, 60), -1)
        frames.append(img)
    return frames


def write_face_video(path, n=12, size=(112, 96), **kw) -> Path:
    return write_video(path, face_frames(n, size, **kw), fps=25)


def write_frame_folder(folder, n=10, size=(64, 64)) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(face_frames(n, size)):
        cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def make_dfew(root, clips=10, short=("00003",)) -> Path:
    """DFEW layout: EmoLabel_DataSplit with unpadded names in one file, frame folders."""
    root = Path(root)
    names = [f"{i:05d}" for i in range(1, clips + 1)]
    labels = {n: 1 + i % 7 for i, n in enumerate(names)}
    for n in names:
        write_frame_folder(root / "Clip" / "clip_224x224" / n, n=4 if n in short else 10)
    for k in range(1, 6):
        test = [n for i, n in enumerate(names) if i % 5 == k - 1]
        train = [n for n in names if n not in test]
        for part, ids in (("train", train), ("test", test)):
            d = root / "EmoLabel_DataSplit" / f"{part}(single-labeled)"
            d.mkdir(parents=True, exist_ok=True)
            # set_1 written with unpadded names as some copies have them; set_2 renamed variant
            fname = f"{part}_set_{k}.csv" if k == 2 else f"set_{k}.csv"
            with open(d / fname, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["video_name", "label"])
                for n in ids:
                    w.writerow([str(int(n)) if k == 1 else n, labels[n]])
    return root


def make_afew(root) -> Path:
    root = Path(root)
    for split, classes in (("Train_AFEW", ["Anger", "Happiness", "Neutral"]), ("Val_AFEW", ["Angry", "Happy", "Neutral"])):
        for ci, cls in enumerate(classes):
            for j in range(2):
                write_face_video(root / split / cls / f"{ci:03d}{j:03d}.avi", n=9, seed=j)
    return root


def make_daisee(root, subjects=("110001", "110002", "110003", "110004"), clips_per_subject=2) -> Path:
    root = Path(root)
    rows = {"Train": [], "Validation": [], "Test": []}
    splits = ["Train", "Train", "Validation", "Test"]
    for s_i, subj in enumerate(subjects):
        split = splits[s_i % 4]
        for j in range(clips_per_subject):
            clip = f"{subj}{j:04d}"
            ext = ".mp4" if j == 1 else ".avi"
            write_face_video(root / "DataSet" / split / subj / clip / f"{clip}{ext}", n=9, seed=j)
            # the label file always says .avi, as the real one does
            rows[split].append([f"{clip}.avi", 0, (s_i + j) % 4, 1, 0])
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    for split, r in rows.items():
        with open(root / "Labels" / f"{split}Labels.csv", "w", newline="") as f:
            f.write("ClipID,Boredom,Engagement,Confusion,Frustration \n")  # trailing space, as the real file
            csv.writer(f).writerows(r)
    return root


def make_bad_inputs(folder) -> dict[str, Path]:
    """Every kind of bad input a user throws at dfer; returns name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    out["zero_byte"] = folder / "zero.mp4"
    out["zero_byte"].write_bytes(b"")
    out["text"] = folder / "notes.mp4"
    out["text"].write_text("this is not a video\n" * 10)
    good = write_face_video(folder / "good.mp4", n=12)
    data = good.read_bytes()
    out["truncated"] = folder / "truncated.mp4"
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["one_frame"] = write_face_video(folder / "one_frame.mp4", n=1)
    out["gray"] = write_video(folder / "gray.mp4", face_frames(10), fps=25, gray=True)
    out["no_face"] = write_face_video(folder / "no_face.mp4", n=10, face=False)
    out["good"] = good
    return out


def toy_clip(label: int, rng: np.random.Generator, frames: int = 8, size: int = 40) -> np.ndarray:
    """(frames, size, size, 3) uint8: a bright block moving right (0), moving left (1) or still (2),
    on a noisy background of random tint. Classes 0 and 1 differ only in the order of their frames."""
    bg = rng.integers(20, 90, 3)
    clip = np.empty((frames, size, size, 3), np.uint8)
    y = int(rng.integers(4, size - 16))
    start = int(rng.integers(0, 4))
    for t in range(frames):
        img = (bg + rng.normal(0, 8, (size, size, 3))).clip(0, 255)
        x = start + (t * (size - 16) // max(1, frames - 1) if label != 2 else (size - 16) // 2)
        if label == 1:
            x = start + (size - 16) - t * (size - 16) // max(1, frames - 1)
        img[y : y + 12, min(x, size - 12) : min(x, size - 12) + 12] = (230, 220, 120)
        clip[t] = img.astype(np.uint8)
    return clip


def make_toy_cache(root, per_class: int = 12, classes: int = 3, frames: int = 8, size: int = 40, seed: int = 0,
                   folds: int = 3) -> Path:
    """A clip cache (the on-disk format of `dfer prepare`) of a learnable 3-class motion task, with splits."""
    from dfer.data.cache import ClipCache, ClipRow
    from dfer.data.splits import make_splits
    from dfer.files import atomic_write_json

    root = Path(root)
    cache = ClipCache(root)
    cache.init({"dataset": "toy", "class_names": ["right", "left", "still"][:classes],
                "face": {"detector": "none", "size": size}, "grouped": False})
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(classes):
        for j in range(per_class):
            row = ClipRow(f"c{k}_{j:03d}", k, "", "toy", frames, frames, 25.0)
            cache.write_clip(row, toy_clip(k, rng, frames, size))
            rows.append(row)
    cache.write_index(rows)
    atomic_write_json(root / "splits.json", make_splits("toy", rows, k=folds, seed=seed, val_fraction=0.2))
    return root

