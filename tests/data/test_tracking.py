import numpy as np
import pytest

from dfer.data import Box, FaceSettings, FaceTracker, make_detector
from synthetic import face_frames

BLANK = np.zeros((60, 60, 3), np.uint8)


class ScriptedDetector:
    """Returns given boxes per call; stands in for dlib to test tracking logic exactly."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)

    def __call__(self, frame):
        return self.script.pop(0)


A0, A6, SMALL = Box(0, 0, 10, 10), Box(3, 0, 13, 10), Box(50, 50, 54, 54)


@pytest.fixture
def missed_round():
    """Rounds at frames 0, 3, 6, 9; frame 3: both faces missed; the small one never comes back."""
    tr = FaceTracker(ScriptedDetector([[A0, SMALL], [], [A6], [A6]]),
                     FaceSettings(detect_every=3, smooth=0.0, max_missed=1))
    out, most_pending = [], 0
    for _ in range(10):
        out += tr.push(BLANK)
        most_pending = max(most_pending, len(tr._pending))
    out += tr.flush()
    return out, most_pending


def test_tracker_gives_every_frame_once_in_order(missed_round):
    out, _ = missed_round
    assert [f.index for f in out] == list(range(10))


def test_tracker_look_ahead_is_bounded_by_the_rounds_a_face_may_miss(missed_round):
    _, most_pending = missed_round
    assert most_pending <= (1 + 1) * 3  # (max_missed + 1) rounds of detect_every frames


def test_tracker_interpolates_a_missed_round(missed_round):
    face = {f.index: f.faces.get(0) for f in missed_round[0]}
    assert face[0].box == A0 and face[0].source == "detected"
    assert face[3].box.x0 == pytest.approx(1.5) and face[3].source == "tracked"
    assert face[5].box.x0 == pytest.approx(2.5)
    assert face[6].box == A6 and face[6].detected
    assert face[9].detected and all(face[i] is not None for i in range(10))


def test_tracker_ends_a_track_after_its_missed_rounds(missed_round):
    small_frames = [f.index for f in missed_round[0] if 1 in f.faces]
    assert small_frames == [0, 1, 2]  # ended after 2 missed rounds; held k-1 frames after its detection


@pytest.fixture
def smoothed():
    det = ScriptedDetector([[Box(0, 0, 10, 10)], [Box(4, 0, 18, 10)], [Box(40, 40, 50, 50)]])
    tr = FaceTracker(det, FaceSettings(detect_every=2, smooth=0.5, max_missed=0))
    return tr, list(tr.run([BLANK] * 5))


def test_tracker_smooths_the_width_but_follows_the_centre(smoothed):
    _, out = smoothed
    # the centre follows the detection (x 11), the width moves halfway from 10 to 14
    assert out[2].faces[0].box.as_array() == pytest.approx([5, 0, 17, 10])
    assert out[1].faces[0].box.x0 == pytest.approx(2.5)


def test_tracker_gives_a_new_face_the_next_id(smoothed):
    tr, out = smoothed
    assert 1 in out[4].faces and 0 not in out[4].faces
    assert tr.frames_detected == 3


def test_tracker_keeps_two_faces_apart():
    s = FaceSettings(detect_size=480, detect_every=2)  # two small faces: let the detector see more pixels
    out = list(FaceTracker(make_detector(s), s).run(face_frames(8, (224, 112), faces=2)))
    assert all(sorted(f.faces) == [0, 1] for f in out)
    xs = sorted((f.box.x0 + f.box.x1) / 2 for f in out[4].faces.values())
    assert xs[0] < 112 < xs[1]
