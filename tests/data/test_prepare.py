import csv
import json
import subprocess
import sys

import pytest

from dfer.cli import main
from dfer.data import ClipCache, ClipDataset, FaceSettings, Splits, load_spec, prepare_dataset
from dfer.data.adapters import DFEW_CLASSES
from dfer.errors import DatasetError
from synthetic import make_afew, make_bad_inputs, make_daisee, make_dfew, write_face_video

FAST = FaceSettings(size=48, max_frames=12)


def _rows(cache):
    with open(cache / "index.csv") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_bad_inputs_are_recorded_while_the_rest_is_prepared(tmp_path):
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


@pytest.fixture(scope="module")
def dfew(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dfew")
    spec = load_spec("dfew", make_dfew(tmp / "DFEW"))
    summary = prepare_dataset(spec, tmp / "cache", FaceSettings(detector="none", size=48), progress=False)
    return spec, summary, tmp / "cache"


def test_dfew_layout_is_read_with_padded_ids_as_face_crops(dfew):
    spec, _, _ = dfew
    assert spec.default_detector == "none"  # clip_224x224 frames are already faces
    assert [r.clip_id for r in spec.records][:2] == ["00001", "00002"]  # unpadded names padded
    assert spec.records[0].label == 0 and spec.class_names == DFEW_CLASSES


def test_dfew_prepares_five_official_folds_with_val_carved_from_train(dfew):
    _, s, cache = dfew
    assert s.ok == 10 and s.failed == 0
    splits = json.loads((cache / "splits.json").read_text())
    assert splits["default"] == "official" and len(splits["protocols"]["official"]["folds"]) == 5
    f1 = Splits.load(cache).fold(1)  # the record every reader uses
    assert sorted(f1.test) == ["00001", "00006"]
    assert not set(f1.test) & set(f1.train + f1.val)
    assert len(f1.val) >= 1 and not set(f1.val) & set(f1.train)


def test_a_short_clip_is_kept_as_it_is(dfew):
    assert ClipCache(dfew[2]).load_frames("00003").shape == (4, 48, 48, 3)


@pytest.fixture(scope="module")
def afew(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("afew")
    spec = load_spec("afew", make_afew(tmp / "AFEW"))
    summary = prepare_dataset(spec, tmp / "cache", FAST, folds=3, progress=False)
    return spec, summary, tmp / "cache"


def test_afew_class_names_are_folded_into_dfews(afew):
    spec = afew[0]
    assert {spec.class_names[r.label] for r in spec.records} == {"Angry", "Happy", "Neutral"}  # Anger, Happiness


def test_afew_keeps_its_official_test_part(afew):
    _, s, cache = afew
    assert s.ok == 12, _rows(cache)
    official = json.loads((cache / "splits.json").read_text())["protocols"]["official"]["folds"][0]
    assert all(i.startswith("test-") for i in official["test"])


def test_afew_defaults_to_kfold_over_every_clip(afew):
    spec, _, cache = afew
    splits = json.loads((cache / "splits.json").read_text())
    assert splits["default"] == "kfold"
    tests = [set(f["test"]) for f in splits["protocols"]["kfold"]["folds"]]
    assert set().union(*tests) == {r.clip_id for r in spec.records} and sum(map(len, tests)) == 12


@pytest.fixture(scope="module")
def daisee(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daisee")
    root = make_daisee(tmp / "DAiSEE", subjects=[f"11000{i}" for i in range(1, 9)])
    with open(root / "Labels" / "TrainLabels.csv", "a") as f:
        f.write("1100099999.avi,0,1,0,0\n")  # a label row pointing at a video that is not there
    spec = load_spec("daisee", root)
    summary = prepare_dataset(spec, tmp / "cache", FAST, folds=2, progress=False)
    return spec, summary, tmp / "cache"


def test_daisee_header_with_trailing_spaces_is_read(daisee):
    spec = daisee[0]
    assert spec.grouped and spec.class_names[2] == "high"


def test_daisee_finds_the_file_whatever_the_label_file_says_its_extension_is(daisee):
    rec = {r.clip_id: r for r in daisee[0].records}
    assert rec["1100010001"].source.endswith(".mp4")  # label says .avi, disk has .mp4
    assert rec["1100010000"].subject == "110001"


def test_daisee_records_a_missing_file_while_preparing_the_rest(daisee):
    _, s, cache = daisee
    assert s.failed == 1 and s.ok == 16
    fails = list(csv.DictReader(open(cache / "failures.csv")))
    assert fails[0]["clip"] == "1100099999" and "not found" in fails[0]["reason"]


def test_daisee_folds_never_share_a_subject(daisee):
    cache = daisee[2]
    splits = json.loads((cache / "splits.json").read_text())
    rows = _rows(cache)
    for f in splits["protocols"]["kfold"]["folds"]:
        subj = {p: {rows[i]["subject"] for i in f[p]} for p in ("train", "val", "test")}
        assert not subj["train"] & subj["test"] and not subj["val"] & subj["test"] and not subj["train"] & subj["val"]
    off = splits["protocols"]["official"]["folds"][0]
    assert off["val"] and off["test"]


@pytest.fixture
def folder_spec(tmp_path):
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for j in range(3):
            write_face_video(root / cls / f"{j}.mp4", n=8, seed=j)
    return load_spec("folder", root)


def test_shards_split_the_work(folder_spec, tmp_path):
    out = tmp_path / "cache"
    s0 = prepare_dataset(folder_spec, out, FAST, shard=(0, 2), folds=2, progress=False)
    assert s0.processed == 3 and s0.ok == 3
    s1 = prepare_dataset(folder_spec, out, FAST, shard=(1, 2), folds=2, progress=False)
    assert s1.processed == 3 and s1.ok == 6


def test_a_rerun_redoes_only_the_clip_without_its_finished_marker(folder_spec, tmp_path):
    out = tmp_path / "cache"
    prepare_dataset(folder_spec, out, FAST, folds=2, progress=False)
    (out / "clips" / "a-1.json").unlink()  # as if killed while writing it
    s2 = prepare_dataset(folder_spec, out, FAST, folds=2, progress=False)
    assert s2.processed == 1 and s2.skipped == 5 and s2.ok == 6
    assert not list((out / "clips").glob("*.tmp"))


def test_a_cache_of_other_face_settings_is_refused(folder_spec, tmp_path):
    prepare_dataset(folder_spec, tmp_path / "cache", FAST, folds=2, progress=False)
    with pytest.raises(DatasetError, match="different"):
        prepare_dataset(folder_spec, tmp_path / "cache", FaceSettings(size=64), progress=False)


def test_a_version_1_cache_trains_but_never_gets_version_2_crops(folder_spec, tmp_path):
    out = tmp_path / "cache"
    prepare_dataset(folder_spec, out, FAST, folds=2, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    legacy = {k: meta["face"][k] for k in ("detector", "detect_size", "upsample", "detect_every", "margin", "size",
                                         "max_frames")}  # what dfer 0.1 wrote
    (out / "meta.json").write_text(json.dumps({**meta, "face": legacy}))
    with pytest.raises(DatasetError, match="face pipeline version 1"):
        prepare_dataset(folder_spec, out, FAST, folds=2, progress=False)
    assert ClipDataset(ClipCache(out), num_frames=4)[0][0].shape == (3, 4, 112, 112)
