"""dfer.data.transforms: the clip transforms of training and evaluation, and normalisation."""

import numpy as np
import pytest
import torch

from dfer.data.transforms import ClipTransformConfig, EvalTransform, TrainTransform, resize_frames, to_tensor


def clip(t=4, h=40, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_to_tensor_normalises_exactly():
    frames = np.full((2, 4, 4, 3), 255, np.uint8)
    x = to_tensor(frames, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))  # (3, T, S, S)
    assert x.shape == (3, 2, 4, 4)
    assert torch.allclose(x[:, 0, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
    out = torch.empty(3, 2, 4, 4)
    assert to_tensor(frames, (0.5,) * 3, (0.25, 0.5, 1.0), out=out).data_ptr() == out.data_ptr()


def test_eval_transform_is_a_plain_resize():
    frames = clip()
    raw = EvalTransform(ClipTransformConfig(size=16), raw=True)(frames)
    assert raw.shape == (4, 16, 16, 3) and np.array_equal(raw, resize_frames(frames, 16))
    assert np.array_equal(resize_frames(raw, 16), raw)  # already the size: unchanged


FOUR_SAME = np.repeat(clip(1), 4, axis=0)  # four identical frames


def test_train_transform_is_seeded():
    t = TrainTransform(ClipTransformConfig(size=24), raw=True)
    a = t(FOUR_SAME, torch.Generator().manual_seed(5))
    b = t(FOUR_SAME, torch.Generator().manual_seed(5))
    c = t(FOUR_SAME, torch.Generator().manual_seed(6))
    assert a.shape == (4, 24, 24, 3) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_train_transform_is_the_same_for_every_frame_of_a_clip():
    a = TrainTransform(ClipTransformConfig(size=24), raw=True)(FOUR_SAME, torch.Generator().manual_seed(5))
    assert all(np.array_equal(a[0], a[k]) for k in range(1, 4))  # one crop, flip and colour for the clip


def _plain(flip):
    return TrainTransform(ClipTransformConfig(size=40, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=flip, brightness=0.0,
                                              contrast=0.0, saturation=0.0), raw=True)


def test_train_transform_without_augmentation_is_the_identity():
    assert np.array_equal(_plain(0.0)(FOUR_SAME, torch.Generator().manual_seed(0)), FOUR_SAME)


def test_train_transform_flips_left_to_right():
    assert np.array_equal(_plain(1.0)(FOUR_SAME, torch.Generator().manual_seed(0)), FOUR_SAME[:, :, ::-1])


@pytest.mark.parametrize("size", [8, 33])
def test_resize_frames_shapes(size):
    assert resize_frames(clip(2, 20, 20), size).shape == (2, size, size, 3)


def test_normalize_without_torch_equals_the_loaders_tensor_bit_for_bit():
    from dfer.data.transforms import KINETICS_MEAN, KINETICS_STD, normalize, to_tensor

    frames = np.random.default_rng(0).integers(0, 256, (16, 112, 112, 3), dtype=np.uint8)
    for mean, std in ((KINETICS_MEAN, KINETICS_STD), ((0.5, 0.5, 0.5), (0.25, 0.2, 0.3))):
        assert np.array_equal(normalize(frames, mean, std), to_tensor(frames, mean, std).numpy())
