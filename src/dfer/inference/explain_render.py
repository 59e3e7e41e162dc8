"""`dfer explain` outputs: one folder per video.

    DIR/explain.mp4          every frame with its face boxes, beside the crop of the window that
                             sampled that frame with its Grad-CAM map overlaid (the latest one between)
    DIR/strips/track<T>_<k>.png   per explained window: its T crops above the same crops with the map
    DIR/importance.csv       track_id, window, start_s, end_s, target, position, source_frame, time_s, importance
    DIR/explanations.npz     the raw maps: gradcam (N, T, S, S), importance (N, T), attention maps when the
                             model has the block (spatial (N, T', H', W'), temporal (N, T', T')), and per
                             window its track, times, target and sampled source frames
    DIR/explain.json         stage and its resolution, what was explained, what is absent and why
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from dfer.data.video import FrameSource, VideoWriter, open_source
from dfer.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from dfer.formatting import percent
from dfer.inference.explain import STAGE_RESOLUTION, Explanation, WindowExplanation
from dfer.inference.render import draw_track

STRIP_TILE = 96  # pixels per crop in the PNG strips


def overlay(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """(S, S, 3) uint8 RGB crop with a (S, S) map in [0, 1] blended on top as a JET heat map."""
    heat = cv2.applyColorMap(np.clip(cam * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 1 - alpha, heat, alpha, 0)


def _title(item: WindowExplanation, class_names: list[str]) -> str:
    w = item.window
    p = float(w.probs[item.target])
    return (f"face #{w.track_id}  {w.start_time:.2f}-{w.end_time:.2f} s  predicted {w.label} "
            f"{percent(w.confidence, 0, suffix='%')}  explained: {class_names[item.target]} {percent(p, 0, suffix='%')}")


def strip_image(item: WindowExplanation, class_names: list[str], tile: int = STRIP_TILE) -> np.ndarray:
    """(H, W, 3) uint8 RGB: a title bar, the window's T crops, the same crops with the Grad-CAM map,
    and the temporal importance of each frame as a bar under it."""
    crops = [cv2.resize(c, (tile, tile), interpolation=cv2.INTER_AREA) for c in item.crops]
    maps = [cv2.resize(overlay(c, m), (tile, tile), interpolation=cv2.INTER_AREA) for c, m in zip(item.crops, item.gradcam)]
    bars = np.full((24, tile * len(crops), 3), 255, np.uint8)
    scale = max(float(np.abs(item.importance).max()), 1e-6)
    for t, v in enumerate(item.importance):
        h = int(round(22 * abs(v) / scale))
        color = (37, 99, 235) if v >= 0 else (180, 35, 24)
        cv2.rectangle(bars, (t * tile + 2, 23 - h), ((t + 1) * tile - 3, 23), color, -1)
    title = np.full((26, tile * len(crops), 3), 255, np.uint8)
    cv2.putText(title, _title(item, class_names), (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    return np.vstack([title, np.hstack(crops), np.hstack(maps), bars])


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if ok:
        atomic_write_bytes(path, buf.tobytes())


def _importance_csv(items: list[WindowExplanation], class_names: list[str], fps: float) -> str:
    buf = io.StringIO()
    buf.write("track_id,window,start_s,end_s,target,position,source_frame,time_s,importance\n")
    per_track: dict[int, int] = {}
    for item in items:
        w = item.window
        k = per_track[w.track_id] = per_track.get(w.track_id, -1) + 1
        for pos, (frame, v) in enumerate(zip(w.frames, item.importance)):
            buf.write(f"{w.track_id},{k},{w.start_time:.4f},{w.end_time:.4f},{class_names[item.target]},{pos},{frame},"
                      f"{frame / fps if fps else 0.0:.4f},{float(v):.6f}\n")
    return buf.getvalue()


def _npz(items: list[WindowExplanation]) -> bytes:
    arrays = {
        "gradcam": np.stack([i.gradcam for i in items]).astype(np.float16),  # (N, T, S, S)
        "importance": np.stack([i.importance for i in items]),  # (N, T)
        "target": np.array([i.target for i in items]), "track_id": np.array([i.window.track_id for i in items]),
        "start_s": np.array([i.window.start_time for i in items]), "end_s": np.array([i.window.end_time for i in items]),
        "frames": np.array([i.window.frames for i in items]),  # (N, T) sampled source frames
    }
    if items[0].spatial_attention is not None:
        arrays["spatial_attention"] = np.stack([i.spatial_attention for i in items])  # (N, T', H', W')
        arrays["temporal_attention"] = np.stack([i.temporal_attention for i in items])  # (N, T', T')
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _video(ex: Explanation, source, path: Path) -> None:
    """Every source frame with its boxes, beside the overlaid crop of a window that sampled it."""
    at: dict[int, tuple[WindowExplanation, int]] = {}
    for item in ex.items:
        for pos, frame in enumerate(item.window.frames):
            at.setdefault(frame, (item, pos))
    src = source if isinstance(source, FrameSource) else open_source(source)  # a guarded source stays guarded
    side = src.height
    panel = np.zeros((side, side, 3), np.uint8)
    boxes = ex.prediction.boxes
    with VideoWriter(path, src.fps, src.width + side, src.height) as writer:
        for f, frame in enumerate(src.frames()):
            frame = frame.copy()
            for tid, per_frame in boxes.items():
                if f in per_frame:
                    draw_track(frame, tid, per_frame[f].box.as_array(), None, ex.class_names)
            if f in at:
                item, pos = at[f]
                panel = cv2.resize(overlay(item.crops[pos], item.gradcam[pos]), (side, side), interpolation=cv2.INTER_LINEAR)
                cv2.putText(panel, f"#{item.window.track_id} {ex.class_names[item.target]}", (8, 24),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
            writer.write(np.hstack([frame, panel]))


def write_explanation(ex: Explanation, source, out: str | Path, *, video: bool = True) -> dict:
    """Every output of `dfer explain` for one source into `out`; returns explain.json's content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fps = ex.prediction.fps
    info = {"source": str(source), "stage": ex.stage, "stage_resolution": STAGE_RESOLUTION[ex.stage],
            "windows": len(ex.prediction.windows), "explained": len(ex.items), "class_names": ex.class_names,
            "attention_maps": ex.has_attention,
            "runtime": "PyTorch (explanations need gradients)"}
    if not ex.has_attention:
        info["attention_note"] = "this model has no spatio-temporal attention block (a baseline): no attention maps"
    if ex.items:
        for k, item in enumerate(ex.items):
            _write_png(out / "strips" / f"track{item.window.track_id}_{k:04d}.png", strip_image(item, ex.class_names))
        atomic_write_text(out / "importance.csv", _importance_csv(ex.items, ex.class_names, fps))
        atomic_write_bytes(out / "explanations.npz", _npz(ex.items))
        if video:
            _video(ex, source, out / "explain.mp4")
    else:
        info["message"] = "no face window to explain"
    atomic_write_json(out / "explain.json", info)
    return info
