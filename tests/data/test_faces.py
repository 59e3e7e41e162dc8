from dfer.data import FaceSettings, make_detector
from synthetic import face_frames


def test_dlib_finds_a_drawn_face_in_frame_coordinates():
    det = make_detector(FaceSettings(detect_size=320))
    frame = face_frames(1, (160, 120))[0]
    boxes = det(frame)
    assert len(boxes) == 1
    b = boxes[0]
    # The face is drawn at the centre of a 160x120 frame, detected at 320 px: the box is mapped back around it.
    assert 50 < (b.x0 + b.x1) / 2 < 110 and 30 < (b.y0 + b.y1) / 2 < 90
    assert 20 < b.width < 120
