"""Peer split lists as other DFER projects publish them: absolute paths from the authors' machines,
a folder per fold with val == test, several datasets side by side, 1-based labels."""

import json

import cv2
import pytest

from dfer.cli import main
from dfer.data import ClipCache, load_spec
from dfer.data.peer_lists import PEER_PROTOCOL
from dfer.errors import DatasetError
from synthetic import face_frames

IDS = [f"{i:05d}" for i in range(1, 13)]


def _frames(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(face_frames(n, (48, 48))):
        cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def _write(path, lines, sep="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sep.join(lines) + sep)


@pytest.fixture
def dfew_frames(tmp_path):
    root = tmp_path / "data" / "DFEW" / "Clip" / "jpg_256"
    for cid in IDS:
        _frames(root / cid)
    return tmp_path / "data" / "DFEW"


def test_absolute_author_paths_found_by_suffix_with_the_datasets_own_ids(tmp_path, dfew_frames, capsys):
    lists = tmp_path / "mae"
    author = "/mnt/data1/someone/DFEW/Clip/jpg_256"
    _write(lists / "set_1_train.txt", [f"{author}/{c} {k % 7}" for k, c in enumerate(IDS[:8])])
    _write(lists / "set_1_test.txt", [f"{author}/{c} {k % 7}" for k, c in enumerate(IDS[8:])])
    spec = load_spec("lists", lists, classes="dfew", data_root=dfew_frames)
    assert sorted(r.clip_id for r in spec.records) == IDS  # DFEW's own ids, not the whole path
    assert all(r.source == str(dfew_frames / "Clip" / "jpg_256" / r.clip_id) for r in spec.records)
    said = [n for n in spec.notes if "trailing components" in n]
    assert len(said) == 1 and f"{author}/00009 -> {dfew_frames}/Clip/jpg_256/00009" in said[0]
    forced = load_spec("lists", lists, classes="dfew", data_root=dfew_frames / "Clip",
                       strip_prefix="/mnt/data1/someone/DFEW/Clip")
    assert {r.source for r in forced.records} == {str(dfew_frames / "Clip" / "jpg_256" / c) for c in IDS}
    # nothing found at all: one line with the count and one path as tried, exit 2
    rc = main(["prepare", "lists", "--root", str(lists), "--data-root", str(tmp_path / "elsewhere"),
               "--classes", "dfew", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "none of the 12 listed clips was found" in err and err.count("\n") == 1
    assert f"e.g. {author}/00009 (tried {tmp_path / 'elsewhere' / '00009'})" in err


def test_fold_folders_in_dfer_clips_layout_are_read(tmp_path, dfew_frames):
    lists = tmp_path / "clip"
    author = "/data/someone/DFEW_Frame_Face"
    for k in (1, 2):
        test = IDS[(k - 1) * 6:k * 6]
        train = [c for c in IDS if c not in test]
        line = lambda c: f"{author}/{c} 4 {1 + IDS.index(c) % 7}"  # DFER-CLIP: path frames label, 1-based
        _write(lists / f"split0{k}" / "train.csv", [line(c) for c in train])
        _write(lists / f"split0{k}" / "val.csv", [line(c) for c in test])
        _write(lists / f"split0{k}" / "test.csv", [line(c) for c in test])
    spec = load_spec("lists", lists, classes="dfew", data_root=dfew_frames / "Clip" / "jpg_256")
    assert any("1-based" in n for n in spec.notes)
    assert {r.clip_id: r.label for r in spec.records}["00001"] == 0
    assert [f["name"] for f in spec.official["official"]] == ["1", "2"]
    assert all("val" not in f for f in spec.official["official"])  # carved from train by prepare
    assert [f["val"] == f["test"] for f in spec.official[PEER_PROTOCOL]] == [True, True]
    assert any("validation list is the test list" in n for n in spec.notes)
    out = tmp_path / "cache"
    assert main(["prepare", "lists", "--root", str(lists), "--data-root", str(dfew_frames / "Clip" / "jpg_256"),
                 "--classes", "dfew", "--out", str(out), "--detector", "none", "--size", "32", "--quiet"]) == 0
    splits = json.loads((out / "splits.json").read_text())
    assert splits["default"] == "official"
    for f in splits["protocols"]["official"]["folds"]:
        assert f["val"] and not set(f["val"]) & set(f["test"]) and not set(f["val"]) & set(f["train"])
    assert set(splits["protocols"][PEER_PROTOCOL]["folds"][0]["val"]) == set(IDS[:6])


def test_a_folder_of_several_datasets(tmp_path, dfew_frames, capsys):
    lists = tmp_path / "mixed"
    author = "/home/x/DFEW/Clip/jpg_256"
    _write(lists / "DFEW_set_1_train.txt", [f"{author}/{c} {k % 7}" for k, c in enumerate(IDS[:8])])
    _write(lists / "DFEW_set_1_test.txt", [f"{author}/{c} {k % 7}" for k, c in enumerate(IDS[8:])])
    _write(lists / "MAFW_set_1_train.txt", ["/home/x/MAFW/frames/00025 10"])
    _write(lists / "FERV39K_train.txt", ["/home/x/FERV39k/Action/Sad/0010 5"])
    rc = main(["prepare", "lists", "--root", str(lists), "--data-root", str(dfew_frames), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "the lists hold 3 datasets (dfew, ferv39k, mafw); name one with --dataset" in err
    spec = load_spec("lists", lists, classes="dfew", data_root=dfew_frames)
    assert len(spec.records) == 12 and any("read the 2 dfew lists of 4" in n for n in spec.notes)
    _frames(tmp_path / "FERV39k" / "Action" / "Sad" / "0010", n=2)
    spec = load_spec("lists", lists, dataset="FERV39K", data_root=tmp_path / "FERV39k")
    assert [r.clip_id for r in spec.records] == ["Action_Sad_0010"]


def test_ferv39k_style_paths_keep_scene_with_class_in_the_id(tmp_path):
    root = tmp_path / "FERV39k" / "2_ClipsforFaceCrop"
    rows = []
    for scene in ("Action", "Crime"):
        for cls, lab in (("Sad", 5), ("Happy", 3)):
            _frames(root / scene / cls / "0010", n=3)
            rows.append(f"/mnt/someone/FERV39k/2_ClipsforFaceCrop/{scene}/{cls}/0010 3 {lab}")
    _write(tmp_path / "l" / "FERV39K_test.txt", rows)
    _write(tmp_path / "l" / "FERV39K_train.txt", rows[:2])
    spec = load_spec("lists", tmp_path / "l", classes="ferv39k", data_root=tmp_path / "FERV39k")
    assert sorted(r.clip_id for r in spec.records) == ["Action_Happy_0010", "Action_Sad_0010", "Crime_Happy_0010",
                                                        "Crime_Sad_0010"]


@pytest.fixture
def two_formats(tmp_path):
    data = tmp_path / "frames"
    for k in range(6):
        _frames(data / f"clip{k}", n=5)
    lists = tmp_path / "lists"
    _write(lists / "set_1_train.txt", [f"clip{k} 5 {k % 3}" for k in range(4)], sep="\r\n")  # DFER-CLIP: path frames label, CRLF
    _write(lists / "set_1_test.txt", [f"clip{k} {k % 3}" for k in range(4, 6)], sep="\r\n")  # MAE-DFER: path label
    return lists, data


def test_peer_lists_in_both_line_formats_prepare_with_the_named_classes(tmp_path, two_formats):
    lists, data = two_formats
    rc = main(["prepare", "lists", "--root", str(lists), "--data-root", str(data), "--classes", "dfew",
               "--out", str(tmp_path / "cache"), "--detector", "none", "--size", "32", "--quiet"])
    assert rc == 0
    assert ClipCache(tmp_path / "cache").meta["class_names"][:3] == ["Happy", "Sad", "Neutral"]
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    fold = splits["protocols"]["official"]["folds"][0]
    assert fold["test"] == ["clip4", "clip5"] and len(fold["train"]) + len(fold["val"]) == 4


def test_peer_lists_refuse_a_label_outside_the_classes(two_formats):
    lists, _ = two_formats
    _write(lists / "set_1_val.txt", ["clip0 9"])
    with pytest.raises(DatasetError, match="label 9 outside 0..6"):
        load_spec("lists", lists, classes="dfew")
