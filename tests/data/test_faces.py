import numpy as np
import pytest

from dfer.data import Box, FaceSettings, FaceTracker, crop_face, extract_face_clip, make_detector
from dfer.errors import ConfigError, NoFaceError
from synthetic import face_frames, write_face_video

BLANK = np.zeros((60, 60, 3), np.uint8)


class ScriptedDetector:
    """Returns given boxes per call; stands in for dlib to test tracking logic exactly."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)

    def __call__(self, frame):
        return self.script.pop(0)


def test_dlib_finds_drawn_face_and_maps_box_back():
    det = make_detector(FaceSettings(detect_size=320))
    frame = face_frames(1, (160, 120))[0]
    boxes = det(frame)
    assert len(boxes) == 1
    b = boxes[0]
    # The face is drawn at the centre: the box must be in frame coordinates around it.
    assert 50 < (b.x0 + b.x1) / 2 < 110 and 30 < (b.y0 + b.y1) / 2 < 90
    assert 20 < b.width < 120


def test_tracker_interpolates_bridges_misses_holds_and_ends_tracks():
    a0, a6, small = Box(0, 0, 10, 10), Box(3, 0, 13, 10), Box(50, 50, 54, 54)
    # rounds at frames 0, 3, 6, 9; frame 3: both faces missed; the small one never comes back
    det = ScriptedDetector([[a0, small], [], [a6], [a6]])
    tr = FaceTracker(det, FaceSettings(detect_every=3, smooth=0.0, max_missed=1))
    out, most_pending = [], 0
    for _ in range(10):
        out += tr.push(BLANK)
        most_pending = max(most_pending, len(tr._pending))
    out += tr.flush()
    assert [f.index for f in out] == list(range(10))  # every frame once, in order
    assert most_pending <= (1 + 1) * 3  # look-ahead bounded by (max_missed + 1) rounds
    face = {f.index: f.faces.get(0) for f in out}
    assert face[0].box == a0 and face[0].source == "detected"
    assert face[3].box.x0 == pytest.approx(1.5) and face[3].source == "tracked"  # missed round: interpolated
    assert face[5].box.x0 == pytest.approx(2.5)
    assert face[6].box == a6 and face[6].detected
    assert face[9].detected and all(face[i] is not None for i in range(10))
    small_frames = [f.index for f in out if 1 in f.faces]
    assert small_frames == [0, 1, 2]  # ended after 2 missed rounds; held k-1 frames after its detection


def test_tracker_smooths_detections_and_counts_ids_up():
    det = ScriptedDetector([[Box(0, 0, 10, 10)], [Box(4, 0, 18, 10)], [Box(40, 40, 50, 50)]])
    tr = FaceTracker(det, FaceSettings(detect_every=2, smooth=0.5, max_missed=0))
    out = list(tr.run([BLANK] * 5))
    # the centre follows the detection (x 11), the width moves halfway from 10 to 14
    assert out[2].faces[0].box.as_array() == pytest.approx([5, 0, 17, 10])
    assert out[1].faces[0].box.x0 == pytest.approx(2.5)
    assert 1 in out[4].faces and 0 not in out[4].faces  # a new face gets the next id
    assert tr.frames_detected == 3


def test_tracker_keeps_two_faces_apart():
    s = FaceSettings(detect_size=480, detect_every=2)  # two small faces: let the detector see more pixels
    out = list(FaceTracker(make_detector(s), s).run(face_frames(8, (224, 112), faces=2)))
    assert all(sorted(f.faces) == [0, 1] for f in out)
    xs = sorted((f.box.x0 + f.box.x1) / 2 for f in out[4].faces.values())
    assert xs[0] < 112 < xs[1]


def test_crop_pads_at_borders():
    frame = np.full((40, 40, 3), 200, np.uint8)
    crop = crop_face(frame, Box(-10, -10, 10, 10), size=32, margin=0.0)
    assert crop.shape == (32, 32, 3)
    assert crop[0, 0].max() == 0 and crop[-1, -1].min() == 200


def test_extract_main_face_every_frame_with_trace(tmp_path):
    path = write_face_video(tmp_path / "f.mp4", n=14)
    s = FaceSettings(size=64, max_frames=10)
    clip = extract_face_clip(path, make_detector(s), s)
    assert clip.decoded_frames == 14 and clip.face_frames == 14
    assert clip.frames.shape == (10, 64, 64, 3)
    trace = clip.trace()
    assert trace["frame"] == [0, 2, 3, 4, 6, 7, 9, 10, 11, 13]  # spread uniformly over the 14 frames
    assert len(trace["box"]) == 10 and all(len(b) == 4 for b in trace["box"])
    assert trace["detected"] == [f % 3 == 0 for f in trace["frame"]]


def test_extract_no_face(tmp_path):
    path = write_face_video(tmp_path / "n.mp4", n=8, face=False)
    with pytest.raises(NoFaceError, match="no face found"):
        extract_face_clip(path, make_detector(FaceSettings()), FaceSettings())


def test_bad_face_settings_are_refused_by_name():
    with pytest.raises(ConfigError, match="detect_every must be >= 1, got 0"):
        FaceSettings(detect_every=0)
    with pytest.raises(ConfigError, match="margin"):
        FaceSettings().with_overrides({"margin": -1.0})
    with pytest.raises(ConfigError, match="unknown face setting"):
        FaceSettings().with_overrides({"speed": 3})
    with pytest.raises(ConfigError, match="newer"):
        FaceSettings.from_dict({"version": 99})


def test_face_settings_of_older_versions_are_read():
    old = FaceSettings.from_dict({"detector": "dlib", "detect_size": 320, "upsample": 1, "detect_every": 3,
                                  "margin": 0.25, "size": 128, "max_frames": 48})  # dfer 0.1 wrote no version
    assert old.legacy and old.version == 1 and old.margin == 0.25 and old.upsample == 1
    assert FaceSettings.from_dict(FaceSettings().to_dict()) == FaceSettings()


@pytest.mark.media
def test_real_media(media_dir):
    s = FaceSettings()
    det = make_detector(s)
    clip = extract_face_clip(media_dir / "single_face.mp4", det, s)
    assert clip.face_frames == clip.decoded_frames == 72  # main face in every frame
    with pytest.raises(NoFaceError):
        extract_face_clip(media_dir / "no_face.mp4", det, s)
    car = extract_face_clip(media_dir / "carphone_pristine.mp4", det, s)
    assert car.face_frames >= 100
