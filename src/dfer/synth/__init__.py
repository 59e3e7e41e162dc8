"""Synthetic faces and expression videos (labelled SYNTHETIC wherever they are used)."""

from dfer.synth.face import NEUTRAL, Expression, Identity, draw_face

__all__ = ["NEUTRAL", "Expression", "Identity", "draw_face"]
