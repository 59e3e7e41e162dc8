import pytest

from dfer.data import FaceSettings, extract_face_clip, make_detector
from dfer.errors import NoFaceError
from synthetic import write_face_video


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
