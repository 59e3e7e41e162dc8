"""`Frame`: one decoded frame, converted only as far as each consumer needs.

A video decoder hands out YUV 4:2:0 (I420) planes; converting every frame to full-size RGB cost
more than decoding it (FFmpeg's swscale: about 2-3 ms a frame at 640x360 against 1 ms to decode).
The pipeline's consumers need far less:

- the face detector: a small grey copy, from the Y plane scaled once (`grey`), stretched from video
  range (16-235) to full range, as a grey conversion of the RGB frame would give;
- the shot-cut rule: a tiny copy of the three planes (`thumbnail`);
- face crops and face descriptors: the RGB of a region (`region`), converted from that region's
  planes only (OpenCV's BT.601 video-range conversion, the same pixels as converting the whole frame);
- drawing (the annotated video): full-size RGB (`rgb`), or a region drawn on and written back
  (`paste_rgb`); the encoder takes the planes as they are (`i420`).

Frames from image folders and webcams arrive as RGB and are kept so (`Frame.from_rgb`).
"""

from __future__ import annotations

import cv2
import numpy as np

# Video range (16-235) -> full range (0-255), for the detector's grey copy of the Y plane.
_STRETCH = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
THUMB_WIDTH = 128  # the shot-cut rule compares frames at this width (dfer.data.shots)


class Frame:
    """A decoded frame of `width` x `height`, as I420 planes (even sides, padded by one edge row or
    column for odd sizes) or as RGB; every conversion is made on demand and the full-size ones cached."""

    __slots__ = ("width", "height", "_i420", "_rgb", "_grey", "_thumb")

    def __init__(self, width: int, height: int, *, i420: np.ndarray | None = None, rgb: np.ndarray | None = None) -> None:
        self.width, self.height = int(width), int(height)
        self._i420 = i420  # (H2 * 3 / 2, W2) uint8, H2 and W2 the sides rounded up to even
        self._rgb = rgb  # (H, W, 3) uint8
        self._grey: tuple[int, np.ndarray] | None = None  # (longest side, grey copy)
        self._thumb: tuple[np.ndarray, np.ndarray] | None = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> Frame:
        if rgb.ndim == 2:  # a grey image
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        return cls(rgb.shape[1], rgb.shape[0], rgb=np.ascontiguousarray(rgb))

    @classmethod
    def from_av(cls, frame) -> Frame:
        """From a PyAV VideoFrame: its planes copied as they are (yuv420p), or converted to yuv420p by
        FFmpeg first (other pixel formats: MJPEG's full-range yuvj420p, 4:2:2, 10-bit, RGB codecs)."""
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        w, h = frame.width, frame.height
        if w % 2 == 0 and h % 2 == 0:
            return cls(w, h, i420=frame.to_ndarray(format="yuv420p"))
        return cls(w, h, i420=_odd_planes(frame))

    # -- shape ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, 3), as the RGB array would have."""
        return self.height, self.width, 3

    @property
    def _even(self) -> tuple[int, int]:
        return self.height + self.height % 2, self.width + self.width % 2

    def _planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of Y (H2, W2), U and V (H2/2, W2/2)."""
        h2, w2 = self._even
        y = self._i420[:h2]
        chroma = self._i420[h2:].reshape(2, h2 // 2, w2 // 2)
        return y, chroma[0], chroma[1]

    # -- what consumers ask for -------------------------------------------------------------
    def rgb(self) -> np.ndarray:
        """Full-size RGB uint8 (H, W, 3), converted once."""
        if self._rgb is None:
            self._rgb = np.ascontiguousarray(cv2.cvtColor(self._i420, cv2.COLOR_YUV2RGB_I420)[: self.height, : self.width])
        return self._rgb

    def grey(self, longest: int = 0) -> tuple[np.ndarray, float]:
        """A full-range grey copy whose longest side is `longest` pixels (0: full size), and its scale
        (grey pixels per frame pixel). Scaled once per size: INTER_AREA down, linear up."""
        if self._grey is not None and self._grey[0] == longest:
            return self._grey[1], _scale(self.width, self.height, longest)
        if self._i420 is not None:
            src, stretch = self._planes()[0][: self.height, : self.width], True
        else:
            src, stretch = cv2.cvtColor(self._rgb, cv2.COLOR_RGB2GRAY), False
        scale = _scale(self.width, self.height, longest)
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            src = cv2.resize(src, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        grey = cv2.LUT(src, _STRETCH) if stretch else np.ascontiguousarray(src)
        self._grey = (longest, grey)
        return grey, scale

    def thumbnail(self) -> tuple[np.ndarray, np.ndarray]:
        """What the shot-cut rule compares: the Y plane THUMB_WIDTH px wide (h, 128) and the U and V planes
        half as wide (h / 2, 64, 2), uint8, area-averaged. RGB frames are converted to YUV (BT.601) first."""
        if self._thumb is None:
            w = min(THUMB_WIDTH, self.width)
            size = (w, max(1, round(self.height * w / self.width)))
            half = (max(1, w // 2), max(1, size[1] // 2))
            if self._i420 is not None:
                y, u, v = self._planes()
                y = y[: self.height, : self.width]
            else:
                y, u, v = cv2.split(cv2.cvtColor(self._rgb, cv2.COLOR_RGB2YUV))
            small = [cv2.resize(p, s, interpolation=cv2.INTER_AREA) for p, s in ((y, size), (u, half), (v, half))]
            self._thumb = (small[0], cv2.merge(small[1:]))
        return self._thumb

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB uint8 of the frame's pixels [y0:y1, x0:x1], clipped to the frame (may be empty)."""
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(self.width, int(x1)), min(self.height, int(y1))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
        if self._rgb is not None:
            return self._rgb[y0:y1, x0:x1]
        ex0, ey0, ex1, ey1 = _even_box(x0, y0, x1, y1)
        rgb = cv2.cvtColor(self._region_i420(ex0, ey0, ex1, ey1), cv2.COLOR_YUV2RGB_I420)
        return rgb[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]

    def luma(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The grey (luma) pixels [y0:y1, x0:x1], clipped: a view of the Y plane (video range) of a decoded
        frame, the RGB region's grey conversion otherwise. For measures of a region (sharpness), not display."""
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(self.width, int(x1)), min(self.height, int(y1))
        if self._i420 is not None:
            return self._planes()[0][y0:max(y0, y1), x0:max(x0, x1)]
        region = self._rgb[y0:max(y0, y1), x0:max(x0, x1)]
        return cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.size else np.zeros(region.shape[:2], np.uint8)

    def i420(self) -> np.ndarray:
        """(H2 * 3 / 2, W2) uint8 I420 planes of the frame (even sides), for an encoder."""
        if self._i420 is None:
            h2, w2 = self._even
            rgb = self._rgb
            if (h2, w2) != (self.height, self.width):
                rgb = np.pad(rgb, ((0, h2 - self.height), (0, w2 - self.width), (0, 0)), mode="edge")
            self._i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
        return self._i420

    def editable_region(self, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, int, int]:
        """(RGB copy of a region grown to even bounds, its x0, its y0): draw on it, then `paste_rgb` it back."""
        ex0, ey0, ex1, ey1 = _even_box(max(0, x0), max(0, y0), min(self.width, x1), min(self.height, y1))
        if self._i420 is None:
            return self._rgb[ey0:ey1, ex0:ex1].copy(), ex0, ey0
        return cv2.cvtColor(self._region_i420(ex0, ey0, ex1, ey1), cv2.COLOR_YUV2RGB_I420), ex0, ey0

    def paste_rgb(self, rgb: np.ndarray, x0: int, y0: int) -> None:
        """Write an RGB region (from `editable_region`, even position and sides) back into the frame."""
        h, w = rgb.shape[:2]
        if self._i420 is None:
            self._rgb[y0 : y0 + h, x0 : x0 + w] = rgb
            return
        planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # (h * 3 / 2, w)
        y, u, v = self._planes()
        y[y0 : y0 + h, x0 : x0 + w] = planes[:h]
        chroma = planes[h:].reshape(2, h // 2, w // 2)
        u[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = chroma[0]
        v[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = chroma[1]
        self._rgb = None  # the cached full-size RGB no longer matches

    def _region_i420(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The I420 buffer of an even-bounded region: its Y rows, then its U and V halves."""
        y, u, v = self._planes()
        parts = (y[y0:y1, x0:x1], u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2])
        return np.concatenate([p.ravel() for p in parts]).reshape((y1 - y0) * 3 // 2, x1 - x0)


def _scale(width: int, height: int, longest: int) -> float:
    return longest / max(width, height) if longest else 1.0


def _even_box(x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
    """The box grown to even corners (a 2x2 chroma block is never split)."""
    return x0 - x0 % 2, y0 - y0 % 2, x1 + x1 % 2, y1 + y1 % 2


def _odd_planes(frame) -> np.ndarray:
    """I420 of a yuv420p frame with an odd side, padded to even by repeating the last row / column."""
    w, h = frame.width, frame.height
    h2, w2 = h + h % 2, w + w % 2
    out = np.empty((h2 * 3 // 2, w2), np.uint8)

    def plane(k: int, rows: int, cols: int) -> np.ndarray:
        p = frame.planes[k]
        return np.frombuffer(p, np.uint8)[: rows * p.line_size].reshape(rows, p.line_size)[:, :cols]

    out[:h, :w] = plane(0, h, w)
    out[:h, w:] = out[:h, w - 1 : w]
    out[h:h2] = out[h - 1 : h]
    cw, ch = w2 // 2, h2 // 2
    chroma = out[h2:].reshape(2, ch, cw)
    chroma[0], chroma[1] = plane(1, ch, cw), plane(2, ch, cw)
    return out


def as_frame(frame) -> Frame:
    """A Frame as it is; an RGB (or grey) uint8 array wrapped as one."""
    return frame if isinstance(frame, Frame) else Frame.from_rgb(np.asarray(frame))


__all__ = ["Frame", "THUMB_WIDTH", "as_frame"]
