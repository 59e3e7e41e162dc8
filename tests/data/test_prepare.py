import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dfer.cli import main
from dfer.data import ClipCache, ClipDataset, FaceSettings, get_fold, load_spec, make_loader, prepare_dataset
from dfer.data.adapters import DFEW_CLASSES
from dfer.data.dataset import class_balanced_sampler
from dfer.errors import DatasetError
from synthetic import make_afew, make_bad_inputs, make_daisee, make_dfew, write_face_video

FAST = FaceSettings(size=48, max_frames=12)


def _rows(cache):
    with open(cache / "index.csv") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_dfew_layout_official_folds(tmp_path):
    root = make_dfew(tmp_path / "DFEW")
    spec = load_spec("dfew", root)
    assert spec.default_detector == "none"  # clip_224x224 frames are already faces
    assert [r.clip_id for r in spec.records][:2] == ["00001", "00002"]  # unpadded names padded
    assert spec.records[0].label == 0 and spec.class_names == DFEW_CLASSES
    s = prepare_dataset(spec, tmp_path / "cache", FaceSettings(detector="none", size=48), progress=False)
    assert s.ok == 10 and s.failed == 0
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    assert splits["default"] == "official" and len(splits["protocols"]["official"]["folds"]) == 5
    f1 = get_fold(splits, 1)
    assert sorted(f1["test"]) == ["00001", "00006"]
    assert not set(f1["test"]) & set(f1["train"] + f1["val"])
    assert len(f1["val"]) >= 1 and not set(f1["val"]) & set(f1["train"])
    # the 4-frame clip is kept; the loader pads it with its last frame
    cache = ClipCache(tmp_path / "cache")
    assert cache.load_frames("00003").shape == (4, 48, 48, 3)
    ds = ClipDataset(cache, ["00003"], num_frames=16)
    clip, label, cid = ds[0]
    assert clip.shape == (3, 16, 112, 112) and cid == "00003"
    assert torch.equal(clip[:, 3], clip[:, 15])


def test_afew_aliases_and_kfold(tmp_path):
    root = make_afew(tmp_path / "AFEW")
    spec = load_spec("afew", root)
    names = {spec.class_names[r.label] for r in spec.records}
    assert names == {"Angry", "Happy", "Neutral"}  # Anger/Happiness folded into DFEW names
    s = prepare_dataset(spec, tmp_path / "cache", FAST, folds=3, progress=False)
    assert s.ok == 12, _rows(tmp_path / "cache")
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    assert splits["default"] == "kfold"
    official = splits["protocols"]["official"]["folds"][0]
    assert all(i.startswith("test-") for i in official["test"])
    tests = [set(f["test"]) for f in splits["protocols"]["kfold"]["folds"]]
    assert set().union(*tests) == {r.clip_id for r in spec.records} and sum(map(len, tests)) == 12


def test_daisee_trailing_space_header_subjects_and_missing_file(tmp_path):
    root = make_daisee(tmp_path / "DAiSEE", subjects=[f"11000{i}" for i in range(1, 9)])
    # a label row pointing at a video that is not there
    with open(root / "Labels" / "TrainLabels.csv", "a") as f:
        f.write("1100099999.avi,0,1,0,0\n")
    spec = load_spec("daisee", root)
    assert spec.grouped and spec.class_names[2] == "high"
    rec = {r.clip_id: r for r in spec.records}
    assert rec["1100010001"].source.endswith(".mp4")  # label says .avi, disk has .mp4
    assert rec["1100010000"].subject == "110001"
    s = prepare_dataset(spec, tmp_path / "cache", FAST, folds=2, progress=False)
    assert s.failed == 1 and s.ok == 16
    fails = list(csv.DictReader(open(tmp_path / "cache" / "failures.csv")))
    assert fails[0]["clip"] == "1100099999" and "not found" in fails[0]["reason"]
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    rows = _rows(tmp_path / "cache")
    for f in splits["protocols"]["kfold"]["folds"]:
        subj = {p: {rows[i]["subject"] for i in f[p]} for p in ("train", "val", "test")}
        assert not subj["train"] & subj["test"] and not subj["val"] & subj["test"] and not subj["train"] & subj["val"]
    off = splits["protocols"]["official"]["folds"][0]
    assert off["val"] and off["test"]


def test_bad_inputs_are_recorded_and_the_rest_prepared(tmp_path):
    bad = make_bad_inputs(tmp_path / "media")
    man = tmp_path / "manifest.csv"
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "subject"])
        for k, p in bad.items():
            w.writerow([p.relative_to(tmp_path), "happy" if k != "no_face" else "sad", "s1"])
        w.writerow(["media/missing.mp4", "sad", "s2"])
        w.writerow([bad["good"].relative_to(tmp_path), "happy", "s1"])  # duplicate id
    spec = load_spec("manifest", man)
    assert spec.class_names == ["happy", "sad"]
    s = prepare_dataset(spec, tmp_path / "cache", FAST, progress=False)
    rows = _rows(tmp_path / "cache")
    ok = {k for k, r in rows.items() if r["status"] == "ok"}
    assert ok == {"media_good", "media_one_frame", "media_gray"}
    fails = {r["clip"]: r["reason"] for r in csv.DictReader(open(tmp_path / "cache" / "failures.csv"))}
    assert "empty" in fails["media_zero"]
    assert "not a readable video" in fails["media_notes"]
    assert "media/truncated.mp4" in fails["media_truncated"]
    assert "no face" in fails["media_no_face"]
    assert "not found" in fails["media_missing"]
    assert "duplicate" in fails["media_good__dup"]
    assert s.ok == 3 and s.failed == 6
    assert all("Traceback" not in r for r in fails.values())


def test_resume_skips_finished_and_shards_split_work(tmp_path):
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for j in range(3):
            write_face_video(root / cls / f"{j}.mp4", n=8, seed=j)
    spec = load_spec("folder", root)
    out = tmp_path / "cache"
    s0 = prepare_dataset(spec, out, FAST, shard=(0, 2), folds=2, progress=False)
    assert s0.processed == 3 and s0.ok == 3
    s1 = prepare_dataset(spec, out, FAST, shard=(1, 2), folds=2, progress=False)
    assert s1.processed == 3 and s1.ok == 6
    # "kill" mid-run: drop one finished marker; a rerun redoes exactly that clip
    (out / "clips" / "a-1.json").unlink()
    s2 = prepare_dataset(spec, out, FAST, folds=2, progress=False)
    assert s2.processed == 1 and s2.skipped == 5 and s2.ok == 6
    assert not list((out / "clips").glob("*.tmp"))
    with pytest.raises(DatasetError, match="different"):
        prepare_dataset(spec, out, FaceSettings(size=64), progress=False)
    # a cache of dfer 0.1 (face pipeline version 1): still trains as it is, never gets version-2 crops
    meta = json.loads((out / "meta.json").read_text())
    legacy = {k: meta["face"][k] for k in ("detector", "detect_size", "upsample", "detect_every", "margin", "size",
                                         "max_frames")}
    (out / "meta.json").write_text(json.dumps({**meta, "face": legacy}))
    with pytest.raises(DatasetError, match="face pipeline version 1"):
        prepare_dataset(spec, out, FAST, folds=2, progress=False)
    assert ClipDataset(ClipCache(out), num_frames=4)[0][0].shape == (3, 4, 112, 112)


def test_cli_prepare_folder_with_workers(tmp_path, capsys):
    root = tmp_path / "data"
    for cls in ("x", "y"):
        for j in range(2):
            write_face_video(root / cls / f"{j}.avi", n=8, seed=j)
    rc = main(["prepare", "folder", "--root", str(root), "--out", str(tmp_path / "c"), "--workers", "2",
               "--size", "48", "--max-frames", "8", "--folds", "2", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "4 ok" in out and "0 failed" in out


def test_cli_prepare_bad_root_is_a_clean_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dfer.cli", "prepare", "dfew", "--root", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "EmoLabel_DataSplit" in r.stderr and "Traceback" not in r.stderr


def test_loader_batches_in_order_and_augments_by_seed_and_epoch(tmp_path):
    root = make_dfew(tmp_path / "DFEW", clips=6, short=())
    prepare_dataset(load_spec("dfew", root), tmp_path / "cache", FaceSettings(detector="none", size=48), progress=False)
    train = ClipDataset(tmp_path / "cache", train=True, num_frames=8, seed=1)
    x1, _, _ = train[0]
    x2, _, _ = train[0]
    assert torch.equal(x1, x2)  # same (seed, epoch, index) -> same augmentation
    train.set_epoch(1)
    assert not torch.equal(train[0][0], x1)
    ev = ClipDataset(tmp_path / "cache", num_frames=8)
    assert torch.equal(ev[2][0], ev[2][0])
    loader = make_loader(ev, batch_size=4, workers=0)
    clips, labels, ids = next(iter(loader))
    assert clips.shape == (4, 3, 8, 112, 112) and clips.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 3] and list(ids) == ["00001", "00002", "00003", "00004"]
    assert abs(float(clips.mean())) < 3


def test_class_balanced_sampler_draws_every_class_as_often():
    sampler = class_balanced_sampler([0, 0, 0, 0, 1], num_samples=5000)
    drawn = np.bincount(list(sampler))
    assert abs(drawn[:4].sum() - drawn[4]) < 400


def test_loader_same_batches_with_and_without_workers_and_resumable(tmp_path):
    root = make_dfew(tmp_path / "DFEW", clips=6, short=())
    prepare_dataset(load_spec("dfew", root), tmp_path / "cache", FaceSettings(detector="none", size=48), progress=False)
    ds = ClipDataset(tmp_path / "cache", train=True, num_frames=4, seed=3)

    def epoch_batches(workers, epoch, skip=0):
        loader = make_loader(ds, batch_size=2, workers=workers, seed=5)
        loader.sampler.set_epoch(epoch, skip_batches=skip)
        return [(x, list(i)) for x, _, i in loader]

    a0, b0 = epoch_batches(0, 1), epoch_batches(2, 1)
    assert [i for _, i in a0] == [i for _, i in b0]
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a0, b0))
    assert [i for _, i in epoch_batches(0, 2)] != [i for _, i in a0]  # new epoch, new order
    resumed = epoch_batches(0, 1, skip=1)
    assert len(resumed) == len(a0) - 1
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a0[1:], resumed))
    # Per-item path agrees with the batched path
    ds.set_epoch(1)
    first = [r.id for r in ds.rows].index(a0[0][1][0])
    x0, _, _ = ds[first]
    assert torch.allclose(x0, a0[0][0][0])


def test_epoch_batch_sampler_shards_ranks():
    from dfer.data.dataset import EpochBatchSampler

    labels = [0] * 7 + [1] * 3
    shares = []
    for rank in range(2):
        s = EpochBatchSampler(labels, 2, rank=rank, world_size=2, seed=1)
        shares.append([i for _, b in s for i in b])
    assert len(shares[0]) == len(shares[1]) == 5
    assert set(shares[0]) | set(shares[1]) == set(range(10)) and not set(shares[0]) & set(shares[1])
    bal = EpochBatchSampler([0] * 90 + [1] * 10, 10, balanced=True, seed=0)
    drawn = np.array([labels for _, b in bal for labels in b])
    assert 25 < (drawn >= 90).sum() < 75


def test_atomic_writes_leave_no_temporaries_and_get_umask_permissions(tmp_path):
    import os

    from dfer.files import atomic_write_json

    target = tmp_path / "sub" / "meta.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})  # replaces in place
    assert json.loads(target.read_text()) == {"a": 2} and os.listdir(target.parent) == ["meta.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would give, not mkstemp's 0600
