"""`dfer synth`: a procedurally generated, deterministic expression video set in DFEW's 7 classes.

SYNTHETIC DATA. Cartoon faces, not people; for exercising and testing the whole system on a
machine without the licensed datasets, never as evidence about real expressions.

Layout (the folder-per-class layout `dfer prepare folder|manifest` reads):

    OUT/<Class>/<subject>_<class>.mp4   H.264, 25 fps
    OUT/manifest.csv                    path,label,subject (subject = identity, for grouped splits)
    OUT/SYNTHETIC.txt                   what this is and how it was made (seed, counts)

Every subject (an identity: face shape, skin, hair) performs every class once, as actors do in
the real sets, so subject-grouped splits keep identities apart. Each clip unfolds neutral ->
onset -> apex -> offset at random times and speeds, under nuisance variation: head position,
drift, roll and size; background; lighting direction and level; sensor noise; blur; and
sometimes an occluder over part of the face.

Surprise and Fear are separable only by time: a Fear clip is a Surprise clip played backwards
(brows and eyes open first, then the jaw drops, and it stays; versus open face that closes in
the reverse order). The two classes have exactly the same distribution of single frames, so a
model that ignores frame order cannot tell them apart.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfer.data.video import write_video
from dfer.errors import ConfigError
from dfer.files import atomic_write_text
from dfer.progress import ignore_interrupt, progress_bar
from dfer.synth.face import NEUTRAL, Expression, Identity, draw_face

CLASSES = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]  # DFEW's order
ORDER_ONLY = ("Surprise", "Fear")

APEX = {
    "Happy": Expression(smile=1.0, mouth_open=0.3, mouth_width=0.5, eye_open=-0.5),
    "Sad": Expression(smile=-1.0, brow_inner=1.0, brow_raise=-0.3, eye_open=-0.5, mouth_width=-0.2),
    "Angry": Expression(brow_inner=-1.0, brow_raise=-0.7, mouth_width=-0.5, eye_open=0.2, smile=-0.3),
    "Disgust": Expression(nose_wrinkle=1.0, lip_raise=1.0, smile=-0.5, brow_raise=-0.6, brow_inner=-0.3, eye_open=-0.6),
}
SURPRISE_A = Expression(brow_raise=1.0, eye_open=1.0)  # first stage: brows up, eyes wide
SURPRISE_B = Expression(mouth_open=1.0, mouth_width=-0.2)  # second stage: the jaw drops


@dataclass(frozen=True)
class SynthSettings:
    clips_per_class: int = 24  # = number of subjects
    frames: int = 40
    width: int = 160
    height: int = 128
    fps: float = 25.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clips_per_class < 1 or self.frames < 2 or self.width < 32 or self.height < 32 or self.fps <= 0:
            raise ConfigError(f"synthetic set needs clips_per_class >= 1, frames >= 2, a size of at least 32x32 "
                              f"and fps > 0; got {self.clips_per_class}, {self.frames}, {self.width}x{self.height}, "
                              f"{self.fps}")


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _profile(n: int, rng: np.random.Generator, offset: bool = True) -> np.ndarray:
    """(n,) intensity in [0, 1]: neutral, onset, apex, offset (random times and speeds)."""
    t = np.arange(n) / max(1, n - 1)
    on = rng.uniform(0.05, 0.25)
    rise = rng.uniform(0.08, 0.2)
    hold = rng.uniform(0.35, 0.6)
    fall = rng.uniform(0.1, 0.3)
    up = _smoothstep((t - on) / rise)
    down = 1 - _smoothstep((t - on - rise - hold) / fall) if offset else 1.0
    return up * down


def _expressions(cls: str, n: int, rng: np.random.Generator) -> list[Expression]:
    strength = rng.uniform(0.75, 1.0)
    # Idiosyncratic small movements on top of the class, so no two clips are alike.
    still = ("nose_wrinkle", "lip_raise", "mouth_open")
    jitter = Expression(**{k: float(rng.normal(0, 0.08)) for k in NEUTRAL.__dataclass_fields__ if k not in still})
    if cls == "Neutral":
        wobble = Expression(smile=float(rng.uniform(-0.15, 0.15)), brow_raise=float(rng.uniform(-0.15, 0.15)))
        p = _profile(n, rng)
        return [NEUTRAL.blend(jitter, 1.0).blend(wobble, float(v)) for v in p]
    if cls in ORDER_ONLY:  # Fear is made from a Surprise clip, reversed later
        a = _profile(n, rng, offset=False)
        delay = rng.uniform(0.12, 0.25) * n
        b = np.interp(np.arange(n) - delay, np.arange(n), a, left=0.0)
        return [_add(SURPRISE_A.scaled(strength * float(x)), SURPRISE_B.scaled(strength * float(y)), jitter)
                for x, y in zip(a, b)]
    p = _profile(n, rng)
    return [_add(APEX[cls].scaled(strength * float(v)), jitter) for v in p]


def _add(*exprs: Expression) -> Expression:
    keys = NEUTRAL.__dataclass_fields__
    return Expression(**{k: float(sum(getattr(e, k) for e in exprs)) for k in keys})


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.integers(25, 220, 3).astype(np.float32)
    other = rng.integers(25, 220, 3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = ((xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang) + 0.5)[..., None]
    img = base * (1 - g) + other * g
    for _ in range(int(rng.integers(0, 4))):  # a few objects in the room
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 50)), y + int(rng.integers(10, 50))), c, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, 25)), c, -1)
    return img


def render_clip(cls: str, ident: Identity, rng: np.random.Generator, s: SynthSettings) -> list[np.ndarray]:
    """RGB uint8 frames (H, W, 3) of one clip of class `cls` by subject `ident`."""
    base_cls = "Surprise" if cls == "Fear" else cls
    n, w, h = s.frames, s.width, s.height
    exprs = _expressions(base_cls, n, rng)
    bg = _background(rng, w, h)
    scale = rng.uniform(0.62, 0.75) * h / 128
    cx, cy = rng.uniform(0.38, 0.62) * w, rng.uniform(0.45, 0.55) * h
    vx, vy = rng.normal(0, 0.25, 2)  # drift, pixels per frame
    bob, phase = rng.uniform(0, 2), rng.uniform(0, 2 * np.pi)
    roll0, roll_amp = rng.uniform(-10, 10), rng.uniform(0, 6)
    zoom = rng.uniform(-0.08, 0.08)  # moves toward / away from the camera over the clip
    light_dir = rng.uniform(0, 2 * np.pi)
    light_amp, level = rng.uniform(0.0, 0.35), rng.uniform(0.8, 1.15)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 1 + light_amp * ((xx / w - 0.5) * np.cos(light_dir) + (yy / h - 0.5) * np.sin(light_dir))
    noise_sigma, blur = rng.uniform(1, 5), (rng.uniform(0.3, 1.2) if rng.random() < 0.5 else 0.0)
    occlude = rng.random() < 0.25
    occ_col = tuple(int(v) for v in rng.integers(0, 255, 3))
    occ_side = rng.integers(0, 3)  # left, right or bottom of the face
    occ_frac = rng.uniform(0.15, 0.3)
    frames = []
    for t in range(n):
        k = t / max(1, n - 1)
        img = bg.copy()
        c = (cx + vx * t, cy + vy * t + bob * np.sin(phase + 0.3 * t))
        sc = scale * (1 + zoom * k)
        canvas = img.astype(np.uint8)
        draw_face(canvas, c, sc, exprs[t], ident, roll_deg=roll0 + roll_amp * np.sin(phase + 0.15 * t))
        img = canvas.astype(np.float32)
        if occlude:
            fw, fh = 46 * sc, 60 * sc
            x0, x1, y0, y1 = c[0] - fw, c[0] + fw, c[1] - fh, c[1] + fh
            # From a side, or below the mouth (a hand, a microphone): part of the face stays visible.
            if occ_side == 0:
                x1 = x0 + 2 * fw * occ_frac
            elif occ_side == 1:
                x0 = x1 - 2 * fw * occ_frac
            else:
                y0 = c[1] + 0.78 * fh
            cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), occ_col, -1)
        img *= shade[..., None] * level * (1 + 0.02 * np.sin(0.5 * t + phase))  # lighting, slight flicker
        if blur:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        img += rng.normal(0, noise_sigma, img.shape).astype(np.float32)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames[::-1] if cls == "Fear" else frames


def _write_clip(job: tuple[SynthSettings, str, int, str]) -> None:
    s, out, subj, cls = job
    # One generator per (seed, subject, class): any clip can be regenerated alone, identically.
    # A Fear clip reuses its subject's Surprise draw, reversed: the same frames in the other order.
    ident = Identity.random(np.random.default_rng([s.seed, subj]))
    rng = np.random.default_rng([s.seed, subj, CLASSES.index("Surprise" if cls == "Fear" else cls), 1])
    path = Path(out) / cls / f"s{subj:03d}_{cls.lower()}.mp4"
    write_video(path, render_clip(cls, ident, rng, s), fps=s.fps)  # atomic: a killed run leaves no half video


def generate(out: str | Path, settings: SynthSettings | None = None, *, workers: int = 1, progress: bool = True) -> Path:
    """Write the synthetic set to `out` (resumable: finished videos are kept); returns the manifest path."""
    import multiprocessing as mp

    s = settings or SynthSettings()
    out = Path(out)
    rows = [[f"{cls}/s{subj:03d}_{cls.lower()}.mp4", cls, f"s{subj:03d}"]
            for subj in range(s.clips_per_class) for cls in CLASSES]
    todo = [(s, str(out), subj, cls) for subj in range(s.clips_per_class) for cls in CLASSES
            if not (out / cls / f"s{subj:03d}_{cls.lower()}.mp4").is_file()]
    bar = progress_bar(len(todo), "synth", unit="clip", enabled=progress)
    if workers > 1 and len(todo) > 1:
        with mp.get_context("spawn").Pool(workers, initializer=ignore_interrupt) as pool:
            for _ in pool.imap_unordered(_write_clip, todo, chunksize=4):
                bar.update(1)
    else:
        for job in todo:
            _write_clip(job)
            bar.update(1)
    bar.close()
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["path", "label", "subject"])
    wr.writerows(rows)
    atomic_write_text(out / "manifest.csv", buf.getvalue())
    atomic_write_text(out / "SYNTHETIC.txt", (
        "SYNTHETIC DATA generated by `dfer synth` (procedural cartoon faces, not people).\n"
        f"seed {s.seed}; {s.clips_per_class} subjects x {len(CLASSES)} classes; {s.frames} frames of "
        f"{s.width}x{s.height} at {s.fps:g} fps.\n"
        "Surprise and Fear differ only in frame order (Fear = Surprise reversed).\n"))
    return out / "manifest.csv"
