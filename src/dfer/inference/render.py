"""Drawing predictions: annotated frames and the probability timeline."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dfer.data.video import VideoWriter, read_ahead
from dfer.files import atomic_write_bytes
from dfer.progress import progress_bar

if TYPE_CHECKING:  # the recogniser imports this module: types only
    from dfer.data.tracking import TrackedBox
    from dfer.inference.recognizer import VideoPrediction, WindowPrediction

# Distinct, readable colours (RGB) for track ids.
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128)]


def track_colour(track_id: int) -> tuple[int, int, int]:
    return PALETTE[track_id % len(PALETTE)]


def draw_track(frame: np.ndarray, track_id: int, box: Sequence[float], probs: np.ndarray | None,
               class_names: Sequence[str], *, label: str = "", colour: int | None = None) -> None:
    """Box titled "P1 Happy 0.82" (the person, else "#<track id>"), plus one probability bar per class
    beside it (in place, RGB). `colour`: the palette index (default: the track id)."""
    h, w = frame.shape[:2]
    s = max(0.3, min(h, w) / 720)  # text scale follows the frame size
    col = track_colour(track_id if colour is None else colour)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    th = max(1, int(round(2 * s)))
    cv2.rectangle(frame, (x0, y0), (x1, y1), col, th, cv2.LINE_AA)
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.55 * s * 1.6
    who = label or f"#{track_id}"
    if probs is None:
        title = f"{who} ..."
    else:
        k = int(np.argmax(probs))
        title = f"{who} {class_names[k]} {probs[k]:.2f}"
    (tw, tht), base = cv2.getTextSize(title, font, fs, th)
    ty = y0 - 4 if y0 - tht - base - 4 >= 0 else min(h - 2, y1 + tht + 4)
    cv2.rectangle(frame, (x0, ty - tht - base), (x0 + tw + 4, ty + base // 2), col, -1)
    cv2.putText(frame, title, (x0 + 2, ty - 2), font, fs, (255, 255, 255), th, cv2.LINE_AA)
    if probs is None:
        return
    # Probability panel: right of the box, or left of it when there is no room.
    fs2 = 0.42 * s * 1.6
    line = int(round(16 * s * 1.6))
    label_w = max(cv2.getTextSize(c, font, fs2, 1)[0][0] for c in class_names) + 4
    bar_w = int(round(70 * s * 1.6))
    panel_w, panel_h = label_w + bar_w + 8, line * len(class_names) + 6
    px = x1 + 6 if x1 + 6 + panel_w <= w else max(0, x0 - 6 - panel_w)
    py = max(0, min(h - panel_h, y0))
    roi = frame[py : py + panel_h, px : px + panel_w]
    roi[:] = (roi * 0.45).astype(np.uint8)  # darken behind the text
    for i, (c, p) in enumerate(zip(class_names, probs)):
        yy = py + 3 + i * line
        cv2.putText(frame, c, (px + 3, yy + line - 5), font, fs2, (255, 255, 255), 1, cv2.LINE_AA)
        bx = px + label_w + 4
        cv2.rectangle(frame, (bx, yy + 3), (bx + bar_w, yy + line - 3), (90, 90, 90), -1)
        cv2.rectangle(frame, (bx, yy + 3), (bx + int(round(bar_w * float(p))), yy + line - 3),
                      col if i == int(np.argmax(probs)) else (200, 200, 200), -1)


def draw_banner(frame: np.ndarray, text: str) -> None:
    h, w = frame.shape[:2]
    s = max(0.35, min(h, w) / 720)
    cv2.putText(frame, text, (8, int(24 * s * 1.5)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * s * 1.5, (255, 255, 255),
                max(1, int(2 * s)), cv2.LINE_AA)


def _timeline_rows(result: VideoPrediction) -> list[tuple[str, list[int]]]:
    """(row title, its track ids): one row per person when people were found, else one per face track."""
    tracks = result.track_ids
    if not result.people:
        return [(f"face #{t}", [t]) for t in tracks]
    by_person: dict[str, list[int]] = {}
    for t in tracks:
        by_person.setdefault(result.person(t) or f"#{t}", []).append(t)
    order = sorted(by_person, key=lambda p: min(w.start_time for w in result.windows if w.track_id in by_person[p]))
    return [(f"{p} (track{'s' if len(by_person[p]) > 1 else ''} {', '.join(f'#{t}' for t in by_person[p])})",
             by_person[p]) for p in order]


def plot_timeline(result: VideoPrediction, path: Path) -> None:
    """Class probabilities over time, one panel per person (or per face track when people were not
    found), with the expression episodes as a labelled band at the bottom."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _timeline_rows(result)
    names = result.class_names
    cmap = plt.get_cmap("tab10")
    episodes: dict[int, list] = {}
    for e in result.episodes():
        episodes.setdefault(e.track_id, []).append(e)
    fig, axes = plt.subplots(max(1, len(rows)), 1, figsize=(10, 2.4 * max(1, len(rows)) + 0.6), squeeze=False)
    for ax, row in zip(axes[:, 0], rows or [None]):
        ax.set_xlim(0, max(result.duration, 1e-3))
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        if row is None:
            ax.text(0.5, 0.5, result.summary().get("message", "no predictions"), ha="center", va="center",
                    transform=ax.transAxes, fontsize=12)
            ax.set_title(Path(result.source).name, fontsize=10, parse_math=False)  # a file name is text, "$" too
            continue
        title, tids = row
        for n, tid in enumerate(tids):  # each track its own line: a person's tracks are separate in time
            ws = [w for w in result.windows if w.track_id == tid]
            t = np.array([(w.start_time + w.end_time) / 2 for w in ws])
            p = np.stack([w.probs for w in ws])  # (W, K)
            for k, c in enumerate(names):
                ax.plot(t, p[:, k], "o-" if len(ws) < 40 else "-", ms=3, color=cmap(k % 10), label=c if n == 0 else None)
            for e in episodes.get(tid, []):  # expression episodes, as a band at the bottom
                color = cmap(names.index(e.label) % 10) if e.label in names else "0.6"
                ax.axvspan(e.start_s, e.end_s, ymin=0, ymax=0.06, color=color, alpha=0.6)
                if e.end_s - e.start_s > 0.08 * max(result.duration, 1e-3):
                    ax.text((e.start_s + e.end_s) / 2, 0.085, e.label, ha="center", va="center", fontsize=7,
                            parse_math=False)
        for cut in result.cuts:  # shot cuts, as thin lines
            ax.axvline(cut / result.fps if result.fps else 0.0, color="0.5", lw=0.6, ls=":")
        ax.set_title(f"{Path(result.source).name}: {title}", fontsize=10, parse_math=False)
        ax.legend(fontsize=7, ncol=min(len(names), 7), loc="upper left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def nearest_window(lookup: dict[int, tuple[list[float], list]], track_id: int, frame_index: int,
                   ) -> WindowPrediction | None:
    """The track's window whose centre is nearest the frame (the earlier one on a tie), or None."""
    centres, ws = lookup.get(track_id, ((), ()))
    if not ws:
        return None
    j = min(bisect.bisect_left(centres, frame_index), len(ws) - 1)
    if j > 0 and abs(centres[j - 1] - frame_index) <= abs(centres[j] - frame_index):
        j -= 1
    return ws[j]


def window_lookup(result: VideoPrediction) -> dict[int, tuple[list[float], list[WindowPrediction]]]:
    """Track id -> (window centres, windows), in order of centre: what `nearest_window` searches."""
    lookup: dict[int, tuple[list[float], list]] = {}
    for w in sorted(result.windows, key=lambda w: (w.track_id, w.start_frame + w.end_frame)):
        centres, ws = lookup.setdefault(w.track_id, ([], []))
        centres.append((w.start_frame + w.end_frame) / 2)
        ws.append(w)
    return lookup


def person_colours(result: VideoPrediction) -> dict[int, int]:
    """Track id -> palette index: one colour per person (in order of first appearance), else per track."""
    tracks = sorted(set(result.boxes) | set(result.track_ids))  # ids grow with first appearance
    order = {p: n for n, p in enumerate(dict.fromkeys(result.person(t) for t in tracks if result.person(t)))}
    return {t: order[result.person(t)] if result.person(t) else t for t in tracks}


def write_annotated(result: VideoPrediction, frames: Iterable[np.ndarray], path: Path, *,
                    preset: str = "ultrafast", crf: int = 23, progress: bool = False) -> int:
    """annotated.mp4: the frames of the pass that made `result` (the source read again), each face
    titled with its person ("P1 Happy 0.82") and drawn with the window whose centre is nearest that
    frame, as the timeline does. Returns the frame count; a failure leaves no file.

    Written after the analysis because a track's person is only known once every track has been
    described (dfer.inference.people): a second decode, which costs far less than the analysis
    (measured in benchmarks/bench_people.py). Memory: the boxes and windows, never the frames.

    Encoder: x264 `ultrafast` at crf 23, chosen for speed: on 300 frames of 640x360 it encoded
    1.7x faster than `veryfast` at crf 20 (244 vs 142 frames/s) for a file 2.4x larger; pass
    `preset` and `crf` for smaller files.
    """
    lookup = window_lookup(result)
    colours = person_colours(result)
    per_frame: dict[int, list[tuple[int, TrackedBox]]] = {}
    for tid, boxes in result.boxes.items():
        for i, tb in boxes.items():
            per_frame.setdefault(i, []).append((tid, tb))
    writer = VideoWriter(path, result.fps, result.width, result.height, preset=preset, crf=crf)
    bar = progress_bar(result.num_frames, f"annotate {Path(result.source).stem}", unit="frame", enabled=progress)
    try:
        for i, frame in enumerate(islice(read_ahead(frames), result.num_frames)):
            bar.update(1)
            faces = per_frame.get(i, [])
            for tid, tb in sorted(faces, key=lambda f: f[0]):
                w = nearest_window(lookup, tid, i)
                draw_track(frame, tid, tb.box.as_array(), None if w is None else w.probs, result.class_names,
                           label=result.person(tid), colour=colours.get(tid))
            if not faces:
                draw_banner(frame, "no face")
            writer.write(frame)
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    return writer.frames
