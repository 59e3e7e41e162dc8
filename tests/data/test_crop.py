import numpy as np

from dfer.data import Box, crop_face


def test_crop_pads_at_borders():
    frame = np.full((40, 40, 3), 200, np.uint8)
    crop = crop_face(frame, Box(-10, -10, 10, 10), size=32, margin=0.0)
    assert crop.shape == (32, 32, 3)
    assert crop[0, 0].max() == 0 and crop[-1, -1].min() == 200
