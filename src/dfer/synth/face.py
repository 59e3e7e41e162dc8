"""A procedural cartoon face with expression controls, drawn with OpenCV.

The drawing has the structure dlib's HOG frontal detector looks for (head outline, hair,
brows, eyes, nose, mouth), so synthetic videos go through the real face pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class Expression:
    """Facial action controls, each in about [-1, 1] (0 = neutral)."""

    smile: float = 0.0  # mouth corners up (+) or down (-)
    mouth_open: float = 0.0  # jaw drop, 0..1
    mouth_width: float = 0.0  # lips stretched (+) or pursed (-)
    brow_raise: float = 0.0  # whole brow up (+) / down (-)
    brow_inner: float = 0.0  # inner ends up (+, sad/fear) or down (-, anger)
    eye_open: float = 0.0  # wide (+) or squinting (-)
    nose_wrinkle: float = 0.0  # 0..1, disgust
    lip_raise: float = 0.0  # upper lip raised asymmetrically, 0..1 (disgust)

    def blend(self, other: Expression, t: float) -> Expression:
        """(1 - t) * self + t * other."""
        return Expression(**{k: (1 - t) * getattr(self, k) + t * getattr(other, k) for k in self.__dataclass_fields__})

    def scaled(self, t: float) -> Expression:
        return NEUTRAL.blend(self, t)


NEUTRAL = Expression()


@dataclass(frozen=True)
class Identity:
    """Per-subject look: face shape and colours."""

    face_w: float = 46.0  # half-width of the head, in units of a 160-pixel face box
    face_h: float = 60.0
    skin: tuple[int, int, int] = (205, 170, 150)
    hair: tuple[int, int, int] = (45, 32, 24)
    eye_gap: float = 18.0
    eye_y: float = -12.0
    mouth_y: float = 28.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Identity:
        tone = rng.uniform(0.35, 1.0)
        skin = tuple(int(v) for v in np.array([225, 190, 165]) * tone + rng.integers(-12, 12, 3))
        hair = tuple(int(v) for v in rng.integers(10, 120, 3))
        return cls(
            face_w=rng.uniform(42, 50), face_h=rng.uniform(56, 64), skin=skin, hair=hair,
            eye_gap=rng.uniform(16, 20), eye_y=rng.uniform(-14, -10), mouth_y=rng.uniform(25, 31),
        )


class _Pen:
    """Face units -> patch pixels: the face is drawn in units of a 160-pixel box around `c`."""

    def __init__(self, c: tuple[int, int], s: float) -> None:
        self.c, self.s = c, s

    def P(self, x: float, y: float) -> tuple[int, int]:
        return int(round(self.c[0] + x * self.s)), int(round(self.c[1] + y * self.s))

    def L(self, v: float) -> int:
        return max(1, int(round(v * self.s)))


_DARK = (25, 18, 18)


def draw_face(
    canvas: np.ndarray,
    center: tuple[float, float],
    scale: float,
    expr: Expression = NEUTRAL,
    ident: Identity = Identity(),
    roll_deg: float = 0.0,
) -> np.ndarray:
    """Draw a face onto an RGB uint8 canvas (in place) and return it.

    `scale` = 1 draws a face about 120 x 150 pixels; `roll_deg` tilts the head in plane.
    """
    # Draw upright on a local patch, then rotate and paste, so roll is exact.
    half = int(np.ceil(95 * scale))
    patch = np.zeros((2 * half, 2 * half, 3), np.uint8)
    mask = np.zeros((2 * half, 2 * half), np.uint8)
    pen = _Pen((half, half), scale)
    _draw_head(patch, mask, pen, ident, expr)
    _draw_eyes(patch, pen, ident, expr)
    _draw_nose(patch, pen, expr)
    _draw_mouth(patch, pen, ident, expr)
    if abs(roll_deg) > 1e-3:
        rot = cv2.getRotationMatrix2D((half, half), roll_deg, 1.0)
        patch = cv2.warpAffine(patch, rot, patch.shape[1::-1], flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(mask, rot, mask.shape[1::-1], flags=cv2.INTER_LINEAR)
    _paste(canvas, patch, mask, int(round(center[0])) - half, int(round(center[1])) - half)
    return canvas


def _draw_head(patch: np.ndarray, mask: np.ndarray, pen: _Pen, i: Identity, e: Expression) -> None:
    """Hair behind the head, then the shaded head; the mask marks what is pasted."""
    P, L = pen.P, pen.L
    cv2.ellipse(patch, P(0, -10), (L(i.face_w + 6), L(i.face_h + 4)), 0, 180, 360, i.hair, -1, cv2.LINE_AA)
    cv2.ellipse(mask, P(0, -10), (L(i.face_w + 6), L(i.face_h + 4)), 0, 180, 360, 255, -1)
    jaw = i.face_h + 6 * e.mouth_open
    cv2.ellipse(patch, P(0, 0), (L(i.face_w), L(jaw)), 0, 0, 360, i.skin, -1, cv2.LINE_AA)
    cv2.ellipse(mask, P(0, 0), (L(i.face_w), L(jaw)), 0, 0, 360, 255, -1)
    _shade_face(patch, pen.c, pen.s, i, jaw)


def _draw_eyes(patch: np.ndarray, pen: _Pen, i: Identity, e: Expression) -> None:
    P, L = pen.P, pen.L
    eye_h = 5 * (1 + 0.7 * e.eye_open)
    for side in (-1, 1):
        ex, ey = side * i.eye_gap, i.eye_y
        cv2.ellipse(patch, P(ex, ey), (L(9), L(max(1.0, eye_h))), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(patch, P(ex, ey), L(min(4.0, max(1.5, eye_h - 0.5))), _DARK, -1, cv2.LINE_AA)
        # brows: outer and inner end heights
        base = ey - 12 - 8 * e.brow_raise
        inner = base - 7 * e.brow_inner
        outer = base + 1.5 * e.brow_inner
        cv2.line(patch, P(ex + side * 11, outer), P(ex - side * 9, inner), _DARK, L(3), cv2.LINE_AA)


def _draw_nose(patch: np.ndarray, pen: _Pen, e: Expression) -> None:
    """The nose, with wrinkles for disgust."""
    P, L = pen.P, pen.L
    nose_c = (150, 105, 95)
    cv2.line(patch, P(0, -8), P(-5, 10), nose_c, L(2), cv2.LINE_AA)
    cv2.line(patch, P(-5, 10), P(3, 12), nose_c, L(2), cv2.LINE_AA)
    if e.nose_wrinkle > 0.05:
        wr = (90, 55, 50)
        for k in range(3):
            y = -6 + 4 * k
            cv2.line(patch, P(-12, y), P(-4, y - 3 * e.nose_wrinkle), wr, L(1 + 1.5 * e.nose_wrinkle), cv2.LINE_AA)
            cv2.line(patch, P(4, y - 3 * e.nose_wrinkle), P(12, y), wr, L(1 + 1.5 * e.nose_wrinkle), cv2.LINE_AA)


def _draw_mouth(patch: np.ndarray, pen: _Pen, i: Identity, e: Expression) -> None:
    """Mouth corners, upper and lower lip curves, teeth in a smile, and the folds around the mouth."""
    P, L = pen.P, pen.L
    my = i.mouth_y
    half_w = 15 * (1 + 0.45 * e.mouth_width)
    corner_y = my - 12 * e.smile
    upper_mid = my - 1.5 - 7 * e.lip_raise
    lower_mid = my + 1.5 + 16 * e.mouth_open + 4 * max(0.0, e.smile)
    xs = np.linspace(-half_w, half_w, 15)
    tt = 1 - (xs / half_w) ** 2
    skew = 1 + 0.6 * e.lip_raise * (xs / half_w)  # lip raised more on one side
    upper = corner_y + (upper_mid - corner_y) * tt * skew
    lower = corner_y + (lower_mid - corner_y) * tt
    pts = np.concatenate([np.stack([xs, upper], 1), np.stack([xs[::-1], lower[::-1]], 1)])
    poly = np.array([P(x, y) for x, y in pts], np.int32)
    if e.mouth_open > 0.1 or e.smile > 0.3:
        cv2.fillPoly(patch, [poly], (90, 25, 35), cv2.LINE_AA)
        if e.smile > 0.3 and e.mouth_open < 0.6:
            gap = lower[2:-2] - upper[2:-2]
            teeth = np.array([P(x, y + 1) for x, y in zip(xs[2:-2], upper[2:-2])] +
                             [P(x, y + 1 + 0.6 * g) for x, y, g in zip(xs[2:-2][::-1], upper[2:-2][::-1], gap[::-1])],
                             np.int32)
            cv2.fillPoly(patch, [teeth], (240, 240, 235), cv2.LINE_AA)
    cv2.polylines(patch, [poly], True, (120, 40, 50), L(2.5), cv2.LINE_AA)
    if abs(e.smile) > 0.2:  # nasolabial folds deepen with a smile, mouth-corner lines with a frown
        fold = (130, 85, 75)
        for side in (-1, 1):
            cx = side * (half_w + 3)
            if e.smile > 0:
                cv2.line(patch, P(side * 11, 12), P(cx, corner_y - 1), fold, L(1 + e.smile), cv2.LINE_AA)
            else:
                cv2.line(patch, P(side * half_w, corner_y), P(cx, corner_y + 9 * -e.smile), fold, L(1 - e.smile),
                         cv2.LINE_AA)


def _shade_face(patch: np.ndarray, c: tuple[int, int], s: float, i: Identity, jaw: float) -> None:
    """Light from the front-top: a lit forehead and nose bridge, darker eye sockets, cheeks and jaw.
    Real faces have this relief, and dlib's HOG detector relies on it, most of all on dark skin."""
    h, w = patch.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (xx - c[0]) / (i.face_w * s), (yy - c[1]) / (jaw * s)
    inside = u * u + v * v <= 1.0
    light = 1.18 - 0.45 * (u * u + 0.6 * (v + 0.25) ** 2)  # lit centre, falling off to the edges
    for ex in (-i.eye_gap, i.eye_gap):  # eye sockets
        du, dv = (xx - c[0] - ex * s) / (13 * s), (yy - c[1] - (i.eye_y - 2) * s) / (10 * s)
        light -= 0.22 * np.exp(-(du * du + dv * dv))
    region = patch[inside].astype(np.float32) * np.clip(light[inside], 0.5, 1.4)[:, None]
    patch[inside] = np.clip(region, 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> None:
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + pw), min(h, y0 + ph)
    if sx1 <= sx0 or sy1 <= sy0:
        return
    p = patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0].astype(np.float32)
    a = (mask[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0].astype(np.float32) / 255.0)[..., None]
    region = canvas[sy0:sy1, sx0:sx1].astype(np.float32)
    canvas[sy0:sy1, sx0:sx1] = (region * (1 - a) + p * a).astype(np.uint8)


def with_changes(expr: Expression, **kw: float) -> Expression:
    return replace(expr, **kw)
