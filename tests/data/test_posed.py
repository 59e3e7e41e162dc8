"""CK+ and Oulu-CASIA: fake trees in the layouts as distributed, through `dfer prepare`."""

import json

import cv2
import numpy as np
import pytest

from dfer.cli import main
from dfer.data import ClipCache, load_spec
from dfer.data.posed import CKPLUS_CLASSES, OULU_CLASSES, subject_folds
from dfer.errors import DatasetError
from synthetic import face_frames


def _sequence(folder, stem, n, grey=False, ext="png", size=(64, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(face_frames(n, size, smile_to=1.0)):
        out = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if grey else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        name = f"{stem}{i + 1:08d}.{ext}" if stem else f"{i:03d}.{ext}"
        cv2.imwrite(str(folder / name), out)


def make_ckplus(root, subjects=12, label_every=2):
    """S005-style subjects with 2 sequences each; every `label_every`-th sequence has no label;
    labels are written as CK+ does (`3.0000000e+00`, named after the apex frame)."""
    root.mkdir(parents=True, exist_ok=True)
    labelled = []
    k = 0
    for s in range(subjects):
        subj = f"S{5 + 5 * s:03d}"
        for q in (1, 2):
            seq = f"{q:03d}"
            n = 6 + (k % 3)
            _sequence(root / "cohn-kanade-images" / subj / seq, f"{subj}_{seq}_", n, grey=k % 2 == 0)
            emo = root / "Emotion" / subj / seq
            emo.mkdir(parents=True, exist_ok=True)  # the release has empty folders for unlabelled sequences
            if k % label_every == 0:
                code = 1 + (k // label_every) % 7
                (emo / f"{subj}_{seq}_{n:08d}_emotion.txt").write_text(f"   {code:.7e}\n")
                labelled.append((f"{subj}_{seq}", code, n))
            k += 1
    (root / "cohn-kanade-images" / "S005" / ".DS_Store").write_bytes(b"\0")  # a stray file in a subject folder
    (root / "cohn-kanade-images" / "S005" / "notes.txt").write_text("x")
    return labelled


@pytest.fixture(scope="module")
def ckplus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckplus") / "CK+"
    labelled = make_ckplus(root)
    return root, labelled, load_spec("ckplus", root)


def test_ckplus_keeps_the_labelled_sequences_with_their_seven_classes(ckplus):
    _, labelled, spec = ckplus
    assert spec.class_names == CKPLUS_CLASSES == ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    assert len(spec.records) == len(labelled) == 12 and spec.grouped
    assert "24 sequences in 12 subjects; 12 labelled, 12 without a label skipped" in spec.notes[0]
    by_id = {r.clip_id: r for r in spec.records}
    for cid, code, n in labelled:
        assert by_id[cid].label == code - 1 and by_id[cid].stop == n and by_id[cid].subject == cid[:4]


def test_ckplus_deals_subjects_in_id_order_to_ten_folds(ckplus):
    spec = ckplus[2]
    folds = spec.official["official"]
    assert len(folds) == 10
    subjects = sorted({r.subject for r in spec.records})
    assert [r.subject for r in spec.records if r.clip_id in folds[0]["test"]] == [subjects[0], subjects[10]]
    by_id = {r.clip_id: r for r in spec.records}
    for f in folds:
        assert not {by_id[i].subject for i in f["test"]} & {by_id[i].subject for i in f["train"]}


def test_ckplus_in_dfews_classes_drops_contempt_saying_so(ckplus):
    root, labelled, _ = ckplus
    dfew = load_spec("ckplus", root, classes="dfew")
    contempt = sum(1 for _, code, _ in labelled if code == 2)
    assert len(dfew.records) == 12 - contempt and any("dropped" in n for n in dfew.notes)


@pytest.fixture(scope="module")
def ckplus_cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckplus_cache")
    root = tmp / "CK+"
    make_ckplus(root, subjects=10, label_every=1)
    # frames past the apex (not in the release, but the cut must hold): S005/001's label names frame 6 of 9
    seq = root / "cohn-kanade-images" / "S005" / "001"
    for f in sorted(seq.iterdir()):
        f.unlink()
    _sequence(seq, "S005_001_", 9)
    rc = main(["prepare", "ckplus", "--root", str(root), "--out", str(tmp / "cache"), "--detector", "none",
               "--size", "32", "--quiet", "--workers", "1"])
    assert rc == 0
    return tmp / "cache"


def test_ckplus_clip_stops_at_the_apex(ckplus_cache):
    assert ClipCache(ckplus_cache).trace("S005_001")["frame"].tolist() == list(range(6))
    assert np.load(ckplus_cache / "clips" / "S005_001.npy").shape == (6, 32, 32, 3)


def test_ckplus_prepare_splits_every_part_by_subject(ckplus_cache):
    splits = json.loads((ckplus_cache / "splits.json").read_text())
    assert splits["default"] == "official" and len(splits["protocols"]["official"]["folds"]) == 10
    rows = {r.id: r for r in ClipCache(ckplus_cache).finished().values()}
    for f in splits["protocols"]["official"]["folds"]:
        parts = [{rows[i].subject for i in f[p]} for p in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert f["val"], "validation is carved out of the training part by subject"


def test_a_folder_that_is_not_ckplus_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["prepare", "ckplus", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a CK+ folder: cohn-kanade-images/ not found" in err and "Traceback" not in err


def test_a_ckplus_label_out_of_range_names_its_file(tmp_path, capsys):
    root = tmp_path / "CK+"
    make_ckplus(root, subjects=10)
    bad = next((root / "Emotion").rglob("*_emotion.txt"))
    bad.write_text("9.0000000e+00\n")
    rc = main(["prepare", "ckplus", "--root", str(root), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "outside CK+'s 0..7" in err


def test_a_ckplus_label_that_is_not_a_number_is_refused(tmp_path):
    root = tmp_path / "CK+"
    make_ckplus(root, subjects=10)
    next((root / "Emotion").rglob("*_emotion.txt")).write_text("happy\n")
    with pytest.raises(DatasetError, match="expected one number"):
        load_spec("ckplus", root)


def test_ckplus_refuses_classes_it_cannot_map(ckplus):
    with pytest.raises(DatasetError, match="--classes for ckplus must be ckplus or dfew"):
        load_spec("ckplus", ckplus[0], classes="mafw")


def test_ckplus_missing_apex_frame_is_a_recorded_failure(tmp_path):
    root = tmp_path / "CK+"
    labelled = make_ckplus(root, subjects=11)
    cid, _, n = labelled[0]
    subj, seq = cid.split("_")
    (root / "cohn-kanade-images" / subj / seq / f"{cid}_{n:08d}.png").unlink()
    spec = load_spec("ckplus", root)
    assert [r.clip_id for r, _ in spec.failures] == [cid] and "apex frame" in spec.failures[0][1]
    assert cid not in {r.clip_id for r in spec.records}


def make_oulu(root, subjects=10, sensor="VL", light="Strong"):
    for s in range(1, subjects + 1):
        for k, cls in enumerate(OULU_CLASSES):
            _sequence(root / "OriginalImg" / sensor / light / f"P{s:03d}" / cls, "", 4 + k % 2, ext="jpeg")
    (root / "OriginalImg" / sensor / light / "P001" / "Thumbs.db").write_bytes(b"\0")


@pytest.fixture(scope="module")
def oulu(tmp_path_factory):
    root = tmp_path_factory.mktemp("oulu") / "Oulu-CASIA"
    make_oulu(root)
    make_oulu(root, subjects=10, sensor="NI", light="Dark")
    return root


def test_oulu_reads_visible_light_strong_by_default_in_ten_folds(oulu):
    spec = load_spec("oulu", oulu)
    assert spec.name == "oulu-vl-strong" and spec.class_names == OULU_CLASSES
    assert len(spec.records) == 60 and spec.records[0].clip_id == "P001_Anger" and spec.records[0].stop is None
    folds = spec.official["official"]
    assert len(folds) == 10 and all(len(f["test"]) == 6 for f in folds)


def test_oulu_reads_the_sensor_with_the_light_asked_for(oulu):
    nir = load_spec("oulu", oulu, sensor="nir", light="dark")
    assert nir.name == "oulu-nir-dark" and len(nir.records) == 60


def test_oulu_names_the_missing_sensor_light_folder(oulu):
    with pytest.raises(DatasetError, match="OriginalImg/VL/Weak"):
        load_spec("oulu", oulu, light="weak")


def test_oulu_maps_to_dfews_classes(oulu):
    dfew = load_spec("oulu", oulu, classes="dfew")
    assert dfew.class_names[dfew.records[0].label] == "Angry"


def test_oulu_prepares_through_the_cli_with_its_sensor_flags(oulu, tmp_path):
    out = tmp_path / "cache"
    rc = main(["prepare", "oulu", "--root", str(oulu), "--oulu-sensor", "nir", "--oulu-light", "dark", "--out", str(out),
               "--detector", "none", "--size", "32", "--quiet"])
    assert rc == 0
    assert ClipCache(out).meta["dataset"] == "oulu-nir-dark"
    assert len(ClipCache(out).finished()) == 60


def test_subject_folds_need_ten_subjects():
    from dfer.data.spec import ClipRecord

    recs = [ClipRecord(f"c{i}", "x", 0, f"S{i:03d}") for i in range(9)]
    with pytest.raises(DatasetError, match="9 subjects cannot make 10"):
        subject_folds(recs)
