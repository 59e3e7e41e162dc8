import numpy as np
import pytest

from dfer.data import SegmentSampler, UniformSampler, make_sampler


def test_uniform_takes_the_centre_of_each_segment():
    r = UniformSampler(4)(40)
    assert r.indices.tolist() == [5, 15, 25, 35] and r.padded == 0


def test_short_clips_pad_with_last_frame_not_wrap():
    for s in (UniformSampler(16), SegmentSampler(16)):
        r = s(5, np.random.default_rng(0))
        assert r.indices.tolist() == [0, 1, 2, 3, 4] + [4] * 11
        assert r.padded == 11


def test_segment_sampler_one_per_segment():
    rng = np.random.default_rng(0)
    for n in (16, 17, 50, 300):
        idx = SegmentSampler(16)(n, rng).indices
        assert len(idx) == 16 and np.all(np.diff(idx) >= 0) and idx.max() < n
        edges = np.floor(np.linspace(0, n, 17))
        assert np.all(idx >= edges[:-1]) and np.all(idx < np.maximum(edges[1:], edges[:-1] + 1))


def test_make_sampler_rejects_unknown():
    with pytest.raises(ValueError):
        make_sampler("random-walk")
