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
        self.regions = []  # what each round was asked to look at (None: the whole frame)

    def __call__(self, frame, regions=None):
        self.regions.append(regions)
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


@pytest.fixture
def followed():
    """One face that stays put for 8 rounds (every 2nd frame), a second one appearing at round 5."""
    b, c = Box(10, 10, 30, 30), Box(40, 10, 50, 20)
    det = ScriptedDetector([[b]] * 5 + [[b, c]] * 3)
    tr = FaceTracker(det, FaceSettings(detect_every=2, full_scan_every=3))
    return det, tr, list(tr.run([BLANK] * 16))


def test_rounds_between_scans_look_around_the_followed_faces_only(followed):
    det, tr, _ = followed
    assert [r is None for r in det.regions] == [True, False, False, True, False, False, True, False]
    assert tr.full_scans == 3
    x0, y0, x1, y1 = det.regions[1][0].as_array()
    assert (x1 - x0, (x0 + x1) / 2) == pytest.approx((30.0, 20.0))  # 1.5x the face's side, around it


def test_a_missed_face_makes_the_next_round_a_whole_frame_scan():
    b = Box(10, 10, 30, 30)
    det = ScriptedDetector([[b], [b], [], [b], [b]])
    tr = FaceTracker(det := ScriptedDetector([[b], [b], [], [b], [b]]), FaceSettings(detect_every=1, full_scan_every=10))
    list(tr.run([BLANK] * 5))
    assert [r is None for r in det.regions] == [True, False, False, True, False]


def test_a_crowd_keeps_the_largest_faces_it_may_follow():
    faces = [Box(10 * k, 0, 10 * k + 2 + k, 2 + k) for k in range(5)]  # sizes grow with k
    tr = FaceTracker(ScriptedDetector([faces]), FaceSettings(detect_every=10), max_faces=3)
    out = list(tr.run([BLANK]))
    assert tr.faces_dropped == 2 and [round(tb.box.x0) for tb in out[0].faces.values()] == [20, 30, 40]


class Switch:
    """An identity check that finds someone else from frame `at` on."""

    def __init__(self, at):
        self.at, self.ended = at, []

    def same(self, track_id, index, frame, box):
        return not (index == self.at and track_id == 0)

    def end(self, track_id):
        self.ended.append(track_id)


def test_a_face_that_stops_matching_splits_its_track():
    b = Box(10, 10, 30, 30)
    check = Switch(at=6)
    tr = FaceTracker(ScriptedDetector([[b]] * 5), FaceSettings(detect_every=2), identity=check)
    out = list(tr.run([BLANK] * 10))
    assert [sorted(f.faces) for f in out] == [[0]] * 6 + [[1]] * 4  # no frame has both
    assert tr.splits == [(6, 0, 1)] and 0 in check.ended
