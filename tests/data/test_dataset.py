import numpy as np
import pytest
import torch

from dfer.data import ClipDataset, FaceSettings, load_spec, make_loader, prepare_dataset
from dfer.data.dataset import EpochBatchSampler, class_balanced_sampler
from synthetic import make_dfew


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dfew")
    root = make_dfew(tmp / "DFEW", clips=6, short=())
    prepare_dataset(load_spec("dfew", root), tmp / "cache", FaceSettings(detector="none", size=48), progress=False)
    return tmp / "cache"


def test_a_short_clip_is_padded_with_its_last_frame(tmp_path):
    prepare_dataset(load_spec("dfew", make_dfew(tmp_path / "DFEW")), tmp_path / "cache",
                    FaceSettings(detector="none", size=48), progress=False)  # clip 00003 has 4 frames
    clip, _, cid = ClipDataset(tmp_path / "cache", ["00003"], num_frames=16)[0]
    assert clip.shape == (3, 16, 112, 112) and cid == "00003"
    assert torch.equal(clip[:, 3], clip[:, 15])


def test_train_augmentation_is_a_function_of_seed_epoch_index(cache):
    train = ClipDataset(cache, train=True, num_frames=8, seed=1)
    assert torch.equal(train[0][0], train[0][0])


def test_train_augmentation_changes_with_the_epoch(cache):
    train = ClipDataset(cache, train=True, num_frames=8, seed=1)
    x1 = train[0][0]
    train.set_epoch(1)
    assert not torch.equal(train[0][0], x1)


def test_evaluation_clips_are_fixed(cache):
    ev = ClipDataset(cache, num_frames=8)
    assert torch.equal(ev[2][0], ev[2][0])


def test_the_evaluation_loader_batches_in_order(cache):
    clips, labels, ids = next(iter(make_loader(ClipDataset(cache, num_frames=8), batch_size=4, workers=0)))
    assert clips.shape == (4, 3, 8, 112, 112) and clips.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 3] and list(ids) == ["00001", "00002", "00003", "00004"]
    assert abs(float(clips.mean())) < 3


def _epoch_batches(ds, workers, epoch, skip=0):
    loader = make_loader(ds, batch_size=2, workers=workers, seed=5)
    loader.sampler.set_epoch(epoch, skip_batches=skip)
    return [(x, list(i)) for x, _, i in loader]


@pytest.fixture(scope="module")
def train_set(cache):
    return ClipDataset(cache, train=True, num_frames=4, seed=3)


def test_worker_processes_give_the_same_batches_as_none(train_set):
    a0, b0 = _epoch_batches(train_set, 0, 1), _epoch_batches(train_set, 2, 1)
    assert [i for _, i in a0] == [i for _, i in b0]
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a0, b0))


def test_a_new_epoch_draws_a_new_order(train_set):
    assert [i for _, i in _epoch_batches(train_set, 0, 2)] != [i for _, i in _epoch_batches(train_set, 0, 1)]


def test_a_resumed_epoch_gives_the_batches_it_had_left_unchanged(train_set):
    a0 = _epoch_batches(train_set, 0, 1)
    resumed = _epoch_batches(train_set, 0, 1, skip=1)
    assert len(resumed) == len(a0) - 1
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a0[1:], resumed))


def test_one_item_equals_its_row_in_the_batch(train_set):
    a0 = _epoch_batches(train_set, 0, 1)
    train_set.set_epoch(1)
    first = [r.id for r in train_set.rows].index(a0[0][1][0])
    assert torch.allclose(train_set[first][0], a0[0][0][0])


def test_class_balanced_sampler_draws_every_class_as_often():
    sampler = class_balanced_sampler([0, 0, 0, 0, 1], num_samples=5000)
    drawn = np.bincount(list(sampler))
    assert abs(drawn[:4].sum() - drawn[4]) < 400


def test_epoch_batch_sampler_gives_each_rank_its_own_share():
    labels = [0] * 7 + [1] * 3
    shares = []
    for rank in range(2):
        s = EpochBatchSampler(labels, 2, rank=rank, world_size=2, seed=1)
        shares.append([i for _, b in s for i in b])
    assert len(shares[0]) == len(shares[1]) == 5
    assert set(shares[0]) | set(shares[1]) == set(range(10)) and not set(shares[0]) & set(shares[1])


def test_epoch_batch_sampler_balances_classes_when_asked():
    bal = EpochBatchSampler([0] * 90 + [1] * 10, 10, balanced=True, seed=0)
    drawn = np.array([labels for _, b in bal for labels in b])
    assert 25 < (drawn >= 90).sum() < 75
