"""Expression episodes: when each face's expression started and ended, from its windows.

The rule, applied per face track (windows in time order):
1. Time: each window stands for the stretch between the midpoints to its neighbours' centres
   (the first from its own start, the last to its own end), so episodes tile the track without
   overlapping although windows do.
2. Hysteresis (`margin`): the label switches from the current class to another only when the
   other's probability beats the current one's by at least `margin` in that window; a window
   labelled uncertain (under --min-confidence) is uncertain whatever came before.
3. Flickers (`min_seconds`): a run of windows shorter than `min_seconds` is merged into the
   neighbouring run whose label those windows give the higher mean probability, shortest run
   first, until every run is long enough (or one run is left).
Both set to 0 give the raw runs of the windows' labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class EpisodeRule:
    min_seconds: float = 1.5  # shorter runs are flickers, merged into a neighbour (one window is 1 s by default)
    margin: float = 0.1  # probability lead a new class needs over the current one to switch


@dataclass
class Episode:
    track_id: int
    start_s: float
    end_s: float
    label: str
    mean_probability: float
    windows: int


def _spans(windows: Sequence) -> list[tuple[float, float]]:
    centres = [(w.start_time + w.end_time) / 2 for w in windows]
    edges = [windows[0].start_time] + [(a + b) / 2 for a, b in zip(centres, centres[1:])] + [windows[-1].end_time]
    return list(zip(edges[:-1], edges[1:]))


def _hysteresis(windows: Sequence, class_names: list[str], margin: float) -> list[str]:
    labels, cur = [], None
    for w in windows:
        if w.label == UNCERTAIN:
            cur = None
            labels.append(UNCERTAIN)
            continue
        top = int(np.argmax(w.probs))
        if cur is None or (top != cur and w.probs[top] - w.probs[cur] >= margin):
            cur = top
        labels.append(class_names[cur])
    return labels


def _runs(labels: list[str]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, lab in enumerate(labels):
        if runs and labels[runs[-1][0]] == lab:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _support(windows: Sequence, idx: list[int], label: str, class_names: list[str]) -> float:
    """Mean probability of `label` over the windows `idx` (of the top class for uncertain)."""
    if label == UNCERTAIN:
        return float(np.mean([windows[i].probs.max() for i in idx]))
    k = class_names.index(label)
    return float(np.mean([windows[i].probs[k] for i in idx]))


def track_episodes(track_id: int, windows: Sequence, class_names: list[str], rule: EpisodeRule) -> list[Episode]:
    """Episodes of one track from its windows (sorted by time)."""
    if not windows:
        return []
    spans = _spans(windows)
    labels = _hysteresis(windows, class_names, rule.margin)
    runs = _runs(labels)

    def length(run: list[int]) -> float:
        return spans[run[-1]][1] - spans[run[0]][0]

    while len(runs) > 1:
        short = [k for k, r in enumerate(runs) if length(r) < rule.min_seconds]
        if not short:
            break
        k = min(short, key=lambda j: (length(runs[j]), j))
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        into = max(neighbours, key=lambda j: _support(windows, runs[k], labels[runs[j][0]], class_names))
        for i in runs[k]:
            labels[i] = labels[runs[into][0]]
        runs = _runs(labels)
    return [Episode(track_id, round(spans[r[0]][0], 3), round(spans[r[-1]][1], 3), labels[r[0]],
                    round(_support(windows, r, labels[r[0]], class_names), 4), len(r)) for r in runs]
