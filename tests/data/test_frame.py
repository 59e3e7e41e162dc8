"""dfer.data.frame: a decoded frame converted only as far as each consumer asks, to the same pixels."""

import av
import cv2
import numpy as np
import pytest

from dfer.data.frame import Frame
from synthetic import face_frames


def decoded(rgb: np.ndarray) -> Frame:
    """The frame as a yuv420p decoder gives it."""
    return Frame.from_av(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))


@pytest.fixture
def frame():
    return decoded(face_frames(1, (160, 120))[0])


def test_a_region_is_the_same_pixels_as_the_whole_frame_converted(frame):
    whole = frame.rgb()
    for x0, y0, x1, y1 in ((10, 20, 90, 100), (11, 21, 57, 99), (0, 0, 160, 120), (150, 110, 170, 130)):
        assert np.array_equal(frame.region(x0, y0, x1, y1), whole[max(0, y0) : y1, max(0, x0) : x1])


def test_a_region_outside_the_frame_is_empty(frame):
    assert frame.region(200, 200, 300, 300).size == 0


def test_the_detectors_grey_copy_is_the_luma_in_full_range(frame):
    grey, scale = frame.grey(80)
    expected = cv2.resize(cv2.cvtColor(frame.rgb(), cv2.COLOR_RGB2GRAY), (80, 60), interpolation=cv2.INTER_AREA)
    assert scale == 0.5 and grey.shape == (60, 80)
    assert np.abs(grey.astype(int) - expected).max() <= 3  # video range stretched: within rounding of RGB -> grey


def test_an_odd_sized_frame_keeps_its_size():
    rgb = face_frames(1, (161, 121))[0]
    out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    f = Frame.from_av(out)
    assert f.rgb().shape == (121, 161, 3) and f.region(150, 110, 161, 121).shape == (11, 11, 3)
    assert np.abs(f.rgb().astype(int) - out.to_ndarray(format="rgb24")).mean() < 2  # the same picture


def test_drawing_on_a_region_changes_that_region_only(frame):
    before = frame.rgb().copy()
    part, x0, y0 = frame.editable_region(41, 31, 80, 70)
    assert (x0, y0) == (40, 30) and part.shape == (40, 40, 3)
    part[:] = 255
    frame.paste_rgb(part, x0, y0)
    after = frame.rgb()
    assert after[35:65, 45:75].min() > 240
    assert np.array_equal(after[:28], before[:28]) and np.array_equal(after[:, 82:], before[:, 82:])


def test_an_rgb_frame_is_kept_as_it_is():
    rgb = face_frames(1, (64, 48))[0]
    f = Frame.from_rgb(rgb)
    assert f.rgb() is not None and np.array_equal(f.region(0, 0, 64, 48), rgb) and f.i420().shape == (72, 64)


def test_the_thumbnail_is_y_128_wide_and_u_v_half_that(frame):
    y, uv = frame.thumbnail()
    assert y.shape == (96, 128) and uv.shape == (48, 64, 2) and y.dtype == uv.dtype == np.uint8
