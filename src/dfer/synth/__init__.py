"""Synthetic faces and videos: a face renderer and tiny video writers."""

from dfer.synth.face import NEUTRAL, Expression, Identity, draw_face
from dfer.synth.video import write_video

__all__ = ["NEUTRAL", "Expression", "Identity", "draw_face", "write_video"]
