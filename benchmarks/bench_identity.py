"""Shots, tracks and people where colour gives no help: grey, dim and same-framing footage.

    python benchmarks/bench_identity.py [--media ../shared/media] [--faces DIR] [--out bench_identity.json]

Videos built here, each with its truth (where the cuts are, who is in each shot):
- media: ../shared/media's two faces (carphone, single_face) in alternating shots of 3 s, 60 s in all,
  in colour, in grey and darkened (x0.25, and grey and darkened);
- archive (with --faces DIR: one sub-folder of photos per person): real faces of up to 10 people, each
  shot one photo with the face moved to the same place at the same size (same framing), a slow zoom
  and sensor noise, 40 shots of 2.5 s, grey, and the same darkened: the footage of a lab archive;
- swap: two people of the archive (or the two media faces) in the same framing, 12 s each (longer than the
  check's period), joined by a dissolve of half a second, no hard cut: the case the in-track identity
  check is for.
For each: cuts found / true (within a frame), tracks crossing a true cut, ids per person (how many P
numbers one true person got), impure ids (a P number over two people), identity splits; the check's
descriptors and seconds per track; and on the 60 s colour video the whole analysis with the identity
check and without it (people on in both). The network is the demo-size one with random weights: labels
are not the point. Prints (and writes) one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import make_ckpt  # noqa: E402
from dfer.data import read_video, write_video  # noqa: E402
from dfer.data.faces import DlibDetector  # noqa: E402
from dfer.data.video import IMAGE_EXTS  # noqa: E402
from dfer.doctor import cpu  # noqa: E402
from dfer.files import atomic_write_json  # noqa: E402
from dfer.inference import InferenceSettings, Recognizer  # noqa: E402
from dfer.inference.identity import PERIOD  # noqa: E402

FPS = 25


def media_shots(media: Path, seconds: float = 60.0, shot: float = 3.0) -> tuple[list, list[int], list[str]]:
    """Alternating shots of the two media faces at 640x360: frames, true cut frames, who is in each shot."""
    a, _ = read_video(media / "carphone_pristine.mp4")
    b, _ = read_video(media / "single_face.mp4")
    a = [cv2.resize(f, (640, 360)) for f in a]
    per = int(shot * FPS)
    frames, cuts, who = [], [], []
    k = 0
    while len(frames) < seconds * FPS:
        src, name = (a, "carphone") if k % 2 == 0 else (b, "single_face")
        start = (17 * k) % len(src)
        if frames:
            cuts.append(len(frames))
        frames += [src[_bounce(start + i, len(src))] for i in range(per)]
        who.append(name)
        k += 1
    return frames, cuts, who


def _bounce(i: int, n: int) -> int:
    """Frame i of a clip of n frames played forward and back: a shot longer than its clip has no jump in it
    (a loop's jump back to the first frame would be a real cut the truth does not list)."""
    i %= max(1, 2 * n - 2)
    return i if i < n else 2 * n - 2 - i


def _framed(photo: np.ndarray, detector: DlibDetector, size: tuple[int, int]) -> np.ndarray | None:
    """The photo moved and scaled so its face sits at one place at one size in a frame of `size`."""
    boxes = detector(photo)
    if not boxes:
        return None
    b = max(boxes, key=lambda x: x.area)
    w, h = size
    side = 0.42 * h
    scale = side / max(b.width, b.height)
    cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
    m = np.float32([[scale, 0, w / 2 - scale * cx], [0, scale, 0.45 * h - scale * cy]])
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _shot(still: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A slow zoom on a still with sensor noise: n frames."""
    h, w = still.shape[:2]
    out = []
    for i in range(n):
        z = 1.0 + 0.04 * i / max(1, n - 1)
        m = cv2.getRotationMatrix2D((w / 2, 0.45 * h), 0.0, z)
        f = cv2.warpAffine(still, m, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.int16)
        f += rng.normal(0, 2.0, f.shape).astype(np.int16)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def archive(faces: Path, people: int = 10, shots: int = 40, shot: float = 2.5,
            size: tuple[int, int] = (320, 240)) -> tuple[list, list[int], list[str], dict[str, list[np.ndarray]]]:
    """Same-framing shots of real faces, one photo each, consecutive shots never the same person."""
    detector = DlibDetector(detect_size=800, upsample=1)
    stills: dict[str, list[np.ndarray]] = {}
    for folder in sorted(p for p in faces.iterdir() if p.is_dir()):
        for photo in sorted(folder.iterdir()):
            if photo.suffix.lower() in IMAGE_EXTS:
                img = cv2.imread(str(photo))
                framed = None if img is None else _framed(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), detector, size)
                if framed is not None:
                    stills.setdefault(folder.name, []).append(framed)
        if len(stills) == people:
            break
    names = sorted(stills)
    rng = np.random.default_rng(0)
    frames, cuts, who = [], [], []
    for k in range(shots):
        name = names[(k * 3) % len(names)] if len(names) > 1 else names[0]  # a walk through everyone, never twice running
        if frames:
            cuts.append(len(frames))
        frames += _shot(stills[name][k % len(stills[name])], int(shot * FPS), rng)
        who.append(name)
    return frames, cuts, who, stills


def grey(frames):
    return [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for f in frames]


def dark(frames, k: float = 0.25):
    return [(f * k).astype(np.uint8) for f in frames]


def swap(first: list, second: list, blend: int = 12) -> tuple[list, list[int], list[str]]:
    """Two shots joined by a dissolve of `blend` frames: no hard cut, the person changes."""
    a, b = first, second
    mix = [cv2.addWeighted(a[-1], 1 - (i + 1) / (blend + 1), b[0], (i + 1) / (blend + 1), 0) for i in range(blend)]
    return a + mix + b, [], ["first", "second"]


def evaluate(rec: Recognizer, video: Path, cuts: list[int], who: list[str], settings=None) -> dict:
    t0 = time.perf_counter()
    r = rec.predict_video(video, settings=settings)
    seconds = time.perf_counter() - t0
    edges = [0, *cuts, 1 << 40]
    found = sum(1 for c in cuts if any(abs(c - f) <= 1 for f in r.cuts))
    spans = {t: (min(f), max(f)) for t, f in r.boxes.items()}
    crossing = sum(1 for a, b in spans.values() if any(a < c <= b for c in cuts))

    def shot_of(frame: int) -> int:
        return max(i for i, e in enumerate(edges[:-1]) if e <= frame)

    ids_of: dict[str, set[str]] = {}
    people_of: dict[str, set[str]] = {}
    for t, (a, _) in spans.items():
        person, truth = r.person(t) or f"#{t}", who[min(shot_of(a), len(who) - 1)] if who else "?"
        ids_of.setdefault(truth, set()).add(person)
        people_of.setdefault(person, set()).add(truth)
    out = {"frames": r.num_frames, "cuts_true": len(cuts), "cuts_found": found, "cuts_false": len(r.cuts) - found,
           "tracks": len(r.boxes), "tracks_crossing_a_true_cut": crossing,
           "people_true": len(set(who)), "people_found": len(set(r.people.values())),
           "ids_per_person": {k: len(v) for k, v in sorted(ids_of.items())},
           "impure_ids": sum(1 for v in people_of.values() if len(v) > 1),
           "identity_splits": len(r.identity_splits), "seconds": round(seconds, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "media"))
    ap.add_argument("--faces", help="a folder of real faces: one sub-folder of photos per person (the archive videos)")
    ap.add_argument("--out", default="bench_identity.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dfer-identity-"))
    rec = Recognizer.from_checkpoint(make_ckpt(tmp / "demo.pt", 8, 32))
    res: dict = {"cpu": cpu()}
    frames, cuts, who = media_shots(Path(args.media))
    variants = {"media_colour": frames, "media_grey": grey(frames), "media_dark": dark(frames),
                "media_grey_dark": dark(grey(frames))}
    if args.faces:
        a_frames, a_cuts, a_who, stills = archive(Path(args.faces))
        variants["archive_grey"] = grey(a_frames)
        variants["archive_grey_dark"] = dark(grey(a_frames), 0.35)
    for name, fr in variants.items():
        video = write_video(tmp / f"{name}.mp4", fr, fps=FPS)
        truth = (a_cuts, a_who) if name.startswith("archive") else (cuts, who)
        res[name] = evaluate(rec, video, *truth)
    # the identity check: a swap with no cut, and what the check costs
    # Each side of the swap lasts longer than the check's period (PERIOD, 10 s): the face is checked after it.
    n = int((PERIOD + 2) * FPS)
    if args.faces:
        rng = np.random.default_rng(1)
        a, b = sorted(stills)[:2]
        first, second = _shot(stills[a][0], n, rng), _shot(stills[b][0], n, rng)
    else:
        first, second = [frames[_bounce(i, 3 * FPS)] for i in range(n)], [frames[3 * FPS + _bounce(i, 3 * FPS)] for i in range(n)]
    joined, _, _ = swap(grey(first), grey(second))
    video = write_video(tmp / "swap.mp4", joined, fps=FPS)
    with_check = rec.predict_video(video)
    without = rec.predict_video(video, settings=InferenceSettings(identity_check=False))
    res["swap_by_dissolve"] = {"tracks_with_check": len(with_check.boxes), "identity_splits": with_check.identity_splits,
                               "people_with_check": len(set(with_check.people.values())),
                               "tracks_without_check": len(without.boxes),
                               "people_without_check": len(set(without.people.values()))}
    video = tmp / "media_colour.mp4"
    timing = {"with_check": [], "without_check": []}
    for _ in range(2):  # interleaved: the machine's noise falls on both
        for key, check in (("with_check", True), ("without_check", False)):
            t0 = time.perf_counter()
            r = rec.predict_video(video, settings=InferenceSettings(identity_check=check))
            timing[key].append(round(time.perf_counter() - t0, 2))
    res["cost_60s_colour"] = {**timing, "tracks": len(r.boxes),
                              "added_s": round(min(timing["with_check"]) - min(timing["without_check"]), 2)}
    print(json.dumps(res, indent=2))
    atomic_write_json(Path(args.out), res)


if __name__ == "__main__":
    main()
