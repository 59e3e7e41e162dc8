"""Drawing predictions: annotated frames and the probability timeline."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dfer.data.frame import Frame, as_frame
from dfer.data.video import VideoWriter, read_ahead
from dfer.files import atomic_write_bytes
from dfer.inference.colours import class_colour, person_colour
from dfer.progress import progress_bar, realtime

if TYPE_CHECKING:  # the recogniser imports this module: types only
    from dfer.data.tracking import TrackedBox
    from dfer.inference.prediction import VideoPrediction, WindowPrediction

def track_colour(track_id: int) -> tuple[int, int, int]:
    return person_colour(track_id)


@dataclass(frozen=True)
class TrackLayout:
    """Where a face's box, title and probability panel go on a frame of h x w (frame pixels)."""

    h: int
    w: int
    scale: float
    box: tuple[int, int, int, int]
    title: str
    title_at: tuple[int, int]  # baseline start of the title text
    title_rect: tuple[int, int, int, int]
    panel: tuple[int, int, int, int] | None  # x0, y0, x1, y1 of the probability panel (None: no window yet)

    @classmethod
    def of(cls, h: int, w: int, box: Sequence[float], probs: np.ndarray | None, class_names: Sequence[str],
           who: str) -> TrackLayout:
        s = max(0.3, min(h, w) / 720)  # text scale follows the frame size
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        th = max(1, int(round(2 * s)))
        fs = 0.55 * s * 1.6
        if probs is None:
            title = f"{who} ..."
        else:
            k = int(np.argmax(probs))
            title = f"{who} {class_names[k]} {probs[k]:.2f}"
        (tw, tht), base = cv2.getTextSize(title, _FONT, fs, th)
        ty = y0 - 4 if y0 - tht - base - 4 >= 0 else min(h - 2, y1 + tht + 4)
        panel = None
        if probs is not None:  # right of the box, or left of it when there is no room
            line, label_w, bar_w = _panel_sizes(s, class_names)
            panel_w, panel_h = label_w + bar_w + 8, line * len(class_names) + 6
            px = x1 + 6 if x1 + 6 + panel_w <= w else max(0, x0 - 6 - panel_w)
            py = max(0, min(h - panel_h, y0))
            panel = (px, py, px + panel_w, py + panel_h)
        return cls(h, w, s, (x0, y0, x1, y1), title, (x0 + 2, ty - 2), (x0, ty - tht - base, x0 + tw + 4, ty + base // 2),
                   panel)

    def extent(self) -> tuple[int, int, int, int]:
        """The rectangle everything drawn falls in (with the lines' width around it), in frame pixels."""
        pad = max(2, int(round(2 * self.scale)) + 2)
        rects = [self.box, self.title_rect] + ([self.panel] if self.panel else [])
        return (min(r[0] for r in rects) - pad, min(r[1] for r in rects) - pad,
                max(r[2] for r in rects) + pad, max(r[3] for r in rects) + pad)


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _panel_sizes(s: float, class_names: Sequence[str]) -> tuple[int, int, int]:
    fs2 = 0.42 * s * 1.6
    line = int(round(16 * s * 1.6))
    label_w = max(cv2.getTextSize(c, _FONT, fs2, 1)[0][0] for c in class_names) + 4
    return line, label_w, int(round(70 * s * 1.6))


def draw_track(frame: np.ndarray, track_id: int, box: Sequence[float], probs: np.ndarray | None,
               class_names: Sequence[str], *, label: str = "", colour: int | None = None,
               origin: tuple[int, int] = (0, 0), frame_size: tuple[int, int] | None = None) -> None:
    """Box titled "P1 Happy 0.82" (the person, else "#<track id>"), plus one probability bar per class
    beside it (in place, RGB). `colour`: the palette index (default: the track id). `frame` may be a part
    of a larger frame of `frame_size` (h, w) whose top-left corner is at `origin` (x, y): the layout is
    the whole frame's, drawn where it falls on the part."""
    h, w = frame_size or frame.shape[:2]
    lay = TrackLayout.of(h, w, box, probs, class_names, label or f"#{track_id}")
    ox, oy = origin
    at = lambda x, y: (x - ox, y - oy)  # noqa: E731 - frame pixels -> the part's pixels
    s = lay.scale
    col = track_colour(track_id if colour is None else colour)
    th = max(1, int(round(2 * s)))
    x0, y0, x1, y1 = lay.box
    cv2.rectangle(frame, at(x0, y0), at(x1, y1), col, th, cv2.LINE_AA)
    r = lay.title_rect
    cv2.rectangle(frame, at(r[0], r[1]), at(r[2], r[3]), col, -1)
    cv2.putText(frame, lay.title, at(*lay.title_at), _FONT, 0.55 * s * 1.6, (255, 255, 255), th, cv2.LINE_AA)
    if probs is None or lay.panel is None:
        return
    px, py, px1, py1 = lay.panel
    a, b = at(px, py)
    roi = frame[max(0, b) : max(0, b + py1 - py), max(0, a) : max(0, a + px1 - px)]
    roi[:] = (roi * 0.45).astype(np.uint8)  # darken behind the text
    line, label_w, bar_w = _panel_sizes(s, class_names)
    fs2 = 0.42 * s * 1.6
    top = int(np.argmax(probs))
    for i, (c, p) in enumerate(zip(class_names, probs)):
        yy = py + 3 + i * line
        cv2.putText(frame, c, at(px + 3, yy + line - 5), _FONT, fs2, (255, 255, 255), 1, cv2.LINE_AA)
        bx = px + label_w + 4
        cv2.rectangle(frame, at(bx, yy + 3), at(bx + bar_w, yy + line - 3), (90, 90, 90), -1)
        cv2.rectangle(frame, at(bx, yy + 3), at(bx + int(round(bar_w * float(p))), yy + line - 3),
                      col if i == top else (200, 200, 200), -1)


def banner_height(h: int, w: int) -> int:
    return int(round(30 * max(0.35, min(h, w) / 720) * 1.5))


def draw_banner(frame: np.ndarray, text: str, *, bottom: bool = False, frame_size: tuple[int, int] | None = None,
                origin: tuple[int, int] = (0, 0)) -> None:
    """A line of text at the top (or, with `bottom`, on a dark band along the bottom) of a frame of
    `frame_size` (h, w); `frame` may be the part of it at `origin`, as in draw_track."""
    h, w = frame_size or frame.shape[:2]
    s = max(0.35, min(h, w) / 720)
    fs, th = 0.7 * s * 1.5, max(1, int(2 * s))
    if bottom:
        band = banner_height(h, w)
        fs = min(fs, 0.5 * s * 1.5)
        while fs > 0.2 and cv2.getTextSize(text, _FONT, fs, th)[0][0] > w - 12:
            fs *= 0.9  # the whole line fits the frame's width
        oy = h - band - origin[1]
        frame[max(0, oy):] = (frame[max(0, oy):] * 0.25).astype(np.uint8)
        cv2.putText(frame, text, (6 - origin[0], h - band // 3 - origin[1]), _FONT, fs, (255, 220, 80), th, cv2.LINE_AA)
        return
    cv2.putText(frame, text, (8 - origin[0], int(24 * s * 1.5) - origin[1]), _FONT, fs, (255, 255, 255), th, cv2.LINE_AA)


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


def plot_timeline(result: VideoPrediction, path: Path, *, warning: str = "") -> None:
    """Class probabilities over time, one panel per person (or per face track when people were not
    found), with the expression episodes as a labelled band at the bottom, in the class colours of
    dfer.inference.colours; `warning` (a synthetic-only model's) as a line across the top."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _timeline_rows(result)
    names = result.class_names
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
                ax.plot(t, p[:, k], "o-" if len(ws) < 40 else "-", ms=3, color=class_colour(names, c),
                        label=c if n == 0 else None)
            for e in episodes.get(tid, []):  # expression episodes, as a band at the bottom
                color = class_colour(names, e.label)
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
    if warning:  # a synthetic-only model says so on the image itself, which travels without summary.json
        fig.subplots_adjust(top=1 - 0.45 / fig.get_figheight())
        fig.text(0.5, 1 - 0.2 / fig.get_figheight(), warning, ha="center", va="center", fontsize=8, color="#b42318",
                 weight="bold", wrap=True, parse_math=False)
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


def frame_faces(result: VideoPrediction):
    """A function of a frame index: what `annotate_frame` draws on that frame, (track id, box, the window
    nearest the frame's probabilities or None, person, colour) per face, in track order."""
    lookup, colours = window_lookup(result), person_colours(result)
    per_frame: dict[int, list[tuple[int, TrackedBox]]] = {}
    for tid, boxes in result.boxes.items():
        for i, tb in boxes.items():
            per_frame.setdefault(i, []).append((tid, tb))

    def faces_on(i: int) -> list:
        out = []
        for tid, tb in sorted(per_frame.get(i, []), key=lambda f: f[0]):
            win = nearest_window(lookup, tid, i)
            out.append((tid, tb.box.as_array(), None if win is None else win.probs, result.person(tid), colours.get(tid)))
        return out

    return faces_on


def annotate_frame(frame: Frame, faces: list[tuple[int, Sequence[float], np.ndarray | None, str, int | None]],
                   class_names: Sequence[str], *, warning: str = "") -> None:
    """Draw faces (track id, box, probabilities or None, label, colour) on a decoded frame, converting
    only the part they cover to RGB and back (the rest of the frame is never converted); "no face" at
    the top of a frame without faces; `warning` on a band along the bottom of every frame."""
    h, w = frame.height, frame.width
    if faces:
        extents = [TrackLayout.of(h, w, box, probs, class_names, label or f"#{tid}").extent()
                   for tid, box, probs, label, _ in faces]
        part, ox, oy = frame.editable_region(min(e[0] for e in extents), min(e[1] for e in extents),
                                             max(e[2] for e in extents), max(e[3] for e in extents))
        for tid, box, probs, label, colour in faces:
            draw_track(part, tid, box, probs, class_names, label=label, colour=colour, origin=(ox, oy), frame_size=(h, w))
        frame.paste_rgb(part, ox, oy)
    else:
        part, ox, oy = frame.editable_region(0, 0, w, min(h, banner_height(h, w) + 8))
        draw_banner(part, "no face", frame_size=(h, w), origin=(ox, oy))
        frame.paste_rgb(part, ox, oy)
    if warning:
        top = max(0, h - banner_height(h, w) - 2)
        part, ox, oy = frame.editable_region(0, top, w, h)
        draw_banner(part, warning, bottom=True, frame_size=(h, w), origin=(ox, oy))
        frame.paste_rgb(part, ox, oy)


def write_annotated(result: VideoPrediction, frames: Iterable, path: Path, *, preset: str = "ultrafast", crf: int = 23,
                    progress: bool = False, warning: str = "") -> int:
    """annotated.mp4: the frames of the pass that made `result` (the source read again: Frames as decoded,
    or RGB arrays), each face titled with its person ("P1 Happy 0.82") and drawn with the window whose
    centre is nearest that frame, as the timeline does; `warning` (a synthetic-only model's) on a band
    along the bottom of every frame. Returns the frame count; a failure leaves no file.

    Written after the analysis because a track's person is only known once every track has been
    described (dfer.inference.people): a second decode. Only the parts of a frame that are drawn on are
    converted to RGB and back; the encoder takes the decoded planes as they are (no full-frame colour
    conversion either way). Memory: the boxes and windows, never the frames.

    Encoder: x264 `ultrafast` at crf 23, chosen for speed: on 300 frames of 640x360 it encoded
    1.7x faster than `veryfast` at crf 20 (244 vs 142 frames/s) for a file 2.4x larger; pass
    `preset` and `crf` for smaller files.
    """
    faces_on = frame_faces(result)
    writer = VideoWriter(path, result.fps, result.width, result.height, preset=preset, crf=crf)
    bar = progress_bar(result.num_frames, f"annotated video of {Path(result.source).stem}", unit="frame",
                       enabled=progress)
    try:
        for i, frame in enumerate(islice(read_ahead(frames), result.num_frames)):
            bar.update(1, speed=realtime(result.duration, result.started) if result.started else "")
            frame = as_frame(frame)
            annotate_frame(frame, faces_on(i), result.class_names, warning=warning)
            writer.write(frame)
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    return writer.frames
