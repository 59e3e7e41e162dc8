"""One colour table for every output: the expression classes (timeline.png, the page's timeline and share
bars, the episodes) and the people (their boxes in annotated.mp4, their rows on the page).

Classes take matplotlib's tab10 in class order (then a few more), people a palette of distinct, readable
colours by order of first appearance; the page reads both from the service (GET /v1/model), so the PNG,
the video and the page agree.
"""

from __future__ import annotations

from collections.abc import Sequence

CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939")
UNKNOWN = "#98a2b3"  # an episode labelled uncertain, or a class outside the table
PERSON_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
                  (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128))  # RGB


def class_colour(class_names: Sequence[str], name: str) -> str:
    """The colour of a class (hex), by its place among the model's classes."""
    return CLASS_COLOURS[list(class_names).index(name) % len(CLASS_COLOURS)] if name in class_names else UNKNOWN


def class_colours(class_names: Sequence[str]) -> dict[str, str]:
    return {c: class_colour(class_names, c) for c in class_names}


def person_colour(index: int) -> tuple[int, int, int]:
    """RGB of the index-th person (or track, when there are no people)."""
    return PERSON_COLOURS[index % len(PERSON_COLOURS)]


def hex_of(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


__all__ = ["CLASS_COLOURS", "PERSON_COLOURS", "UNKNOWN", "class_colour", "class_colours", "hex_of", "person_colour"]
