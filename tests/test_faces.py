import numpy as np
import pytest

from dfer.data import Box, FaceSettings, FaceTracker, crop_face, extract_face_clip, main_track, make_detector
from dfer.errors import NoFaceError
from synthetic import face_frames, write_face_video


class ScriptedDetector:
    """Returns given boxes per call; stands in for dlib to test tracking logic exactly."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)

    def __call__(self, frame):
        return self.script.pop(0)


def test_dlib_finds_drawn_face_and_maps_box_back():
    det = make_detector("dlib", detect_size=320)
    frame = face_frames(1, (160, 120))[0]
    boxes = det(frame)
    assert len(boxes) == 1
    b = boxes[0]
    # The face is drawn at the centre: the box must be in frame coordinates around it.
    assert 50 < (b.x0 + b.x1) / 2 < 110 and 30 < (b.y0 + b.y1) / 2 < 90
    assert 20 < b.width < 120


def test_tracker_interpolates_holds_and_picks_main_face():
    a0, a6 = Box(0, 0, 10, 10), Box(3, 0, 13, 10)
    small = Box(50, 50, 54, 54)
    det = ScriptedDetector([[a0, small], [], [a6]])  # frame 3: missed detection
    tr = FaceTracker(det, detect_every=3, smooth=1)
    for i in range(9):
        tr.update(i, np.zeros((60, 60, 3), np.uint8))
    tracks = tr.finish()
    assert len(tracks) == 2
    main = main_track(tracks)
    assert main.box_at(3).x0 == pytest.approx(1.5)  # interpolated across the missed detection
    assert main.box_at(8).x0 == pytest.approx(3.0)  # held after the last detection
    assert main.box_at(0) == Box(0, 0, 10, 10)
    assert tracks[1].box_at(3) is None or tracks[1].score < main.score


def test_tracker_keeps_two_faces_apart():
    det = make_detector("dlib", detect_size=480)  # two small faces: let the detector see more pixels
    tr = FaceTracker(det, detect_every=2)
    for i, f in enumerate(face_frames(8, (224, 112), faces=2)):
        tr.update(i, f)
    tracks = tr.finish()
    assert len(tracks) == 2
    xs = sorted((t.box_at(4).x0 + t.box_at(4).x1) / 2 for t in tracks)
    assert xs[0] < 112 < xs[1]
    assert all(len(t.boxes) == 8 for t in tracks)


def test_crop_pads_at_borders():
    frame = np.full((40, 40, 3), 200, np.uint8)
    crop = crop_face(frame, Box(-10, -10, 10, 10), size=32, margin=0.0)
    assert crop.shape == (32, 32, 3)
    assert crop[0, 0].max() == 0 and crop[-1, -1].min() == 200


def test_extract_main_face_every_frame(tmp_path):
    path = write_face_video(tmp_path / "f.mp4", n=14)
    s = FaceSettings(size=64, max_frames=10)
    clip = extract_face_clip(path, make_detector("dlib"), s)
    assert clip.decoded_frames == 14 and clip.face_frames == 14
    assert clip.frames.shape == (10, 64, 64, 3)


def test_extract_no_face(tmp_path):
    path = write_face_video(tmp_path / "n.mp4", n=8, face=False)
    with pytest.raises(NoFaceError, match="no face found"):
        extract_face_clip(path, make_detector("dlib"), FaceSettings())


def test_real_media(media_dir):
    s = FaceSettings()
    det = make_detector("dlib")
    clip = extract_face_clip(media_dir / "single_face.mp4", det, s)
    assert clip.face_frames == clip.decoded_frames == 72  # main face in every frame
    with pytest.raises(NoFaceError):
        extract_face_clip(media_dir / "no_face.mp4", det, s)
    car = extract_face_clip(media_dir / "carphone_pristine.mp4", det, s)
    assert car.face_frames >= 100
