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


def test_ckplus_layout_counts_folds_and_classes(tmp_path):
    labelled = make_ckplus(tmp_path / "CK+")
    spec = load_spec("ckplus", tmp_path / "CK+")
    assert spec.class_names == CKPLUS_CLASSES == ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    assert len(spec.records) == len(labelled) == 12 and spec.grouped
    assert "24 sequences in 12 subjects; 12 labelled, 12 without a label skipped" in spec.notes[0]
    by_id = {r.clip_id: r for r in spec.records}
    for cid, code, n in labelled:
        assert by_id[cid].label == code - 1 and by_id[cid].stop == n and by_id[cid].subject == cid[:4]
    folds = spec.official["official"]
    assert len(folds) == 10
    # the rule: subjects with a kept sequence, ascending id, dealt to folds in turn
    subjects = sorted({r.subject for r in spec.records})
    assert [r.subject for r in spec.records if r.clip_id in folds[0]["test"]] == [subjects[0], subjects[10]]
    for f in folds:
        test_subj = {by_id[i].subject for i in f["test"]}
        assert not test_subj & {by_id[i].subject for i in f["train"]}
    dfew = load_spec("ckplus", tmp_path / "CK+", classes="dfew")
    contempt = sum(1 for _, code, _ in labelled if code == 2)
    assert len(dfew.records) == 12 - contempt and any("dropped" in n for n in dfew.notes)


def test_ckplus_clip_stops_at_the_apex_and_prepare_splits_by_subject(tmp_path):
    root = tmp_path / "CK+"
    make_ckplus(root, subjects=10, label_every=1)
    # frames past the apex (not in the release, but the cut must hold): S005/001's label names frame 6 of 9
    seq = root / "cohn-kanade-images" / "S005" / "001"
    for f in sorted(seq.iterdir()):
        f.unlink()
    _sequence(seq, "S005_001_", 9)
    out = tmp_path / "cache"
    rc = main(["prepare", "ckplus", "--root", str(root), "--out", str(out), "--detector", "none", "--size", "32",
               "--quiet", "--workers", "1"])
    assert rc == 0
    cache = ClipCache(out)
    assert cache.trace("S005_001")["frame"].tolist() == list(range(6))
    frames = np.load(out / "clips" / "S005_001.npy")
    assert frames.shape == (6, 32, 32, 3)
    splits = json.loads((out / "splits.json").read_text())
    assert splits["default"] == "official" and len(splits["protocols"]["official"]["folds"]) == 10
    rows = {r.id: r for r in cache.finished().values()}
    for f in splits["protocols"]["official"]["folds"]:
        parts = [{rows[i].subject for i in f[p]} for p in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert f["val"], "validation is carved out of the training part by subject"


def test_ckplus_bad_layouts_and_label_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["prepare", "ckplus", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a CK+ folder: cohn-kanade-images/ not found" in err and "Traceback" not in err
    root = tmp_path / "CK+"
    make_ckplus(root, subjects=10)
    bad = next((root / "Emotion").rglob("*_emotion.txt"))
    bad.write_text("9.0000000e+00\n")
    rc = main(["prepare", "ckplus", "--root", str(root), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "outside CK+'s 0..7" in err
    bad.write_text("happy\n")
    with pytest.raises(DatasetError, match="expected one number"):
        load_spec("ckplus", root)
    with pytest.raises(DatasetError, match="--classes for ckplus must be ckplus or dfew"):
        load_spec("ckplus", root, classes="mafw")


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


def test_oulu_layout_sensors_lights_and_folds(tmp_path):
    root = tmp_path / "Oulu-CASIA"
    make_oulu(root)
    make_oulu(root, subjects=10, sensor="NI", light="Dark")
    spec = load_spec("oulu", root)
    assert spec.name == "oulu-vl-strong" and spec.class_names == OULU_CLASSES
    assert len(spec.records) == 60 and spec.records[0].clip_id == "P001_Anger" and spec.records[0].stop is None
    folds = spec.official["official"]
    assert len(folds) == 10 and all(len(f["test"]) == 6 for f in folds)
    nir = load_spec("oulu", root, sensor="nir", light="dark")
    assert nir.name == "oulu-nir-dark" and len(nir.records) == 60
    with pytest.raises(DatasetError, match="OriginalImg/VL/Weak"):
        load_spec("oulu", root, light="weak")
    dfew = load_spec("oulu", root, classes="dfew")
    assert dfew.class_names[dfew.records[0].label] == "Angry"
    out = tmp_path / "cache"
    rc = main(["prepare", "oulu", "--root", str(root), "--oulu-sensor", "nir", "--oulu-light", "dark", "--out", str(out),
               "--detector", "none", "--size", "32", "--quiet"])
    assert rc == 0
    assert ClipCache(out).meta["dataset"] == "oulu-nir-dark"
    assert len(ClipCache(out).finished()) == 60


def test_subject_folds_need_ten_subjects():
    from dfer.data.spec import ClipRecord

    recs = [ClipRecord(f"c{i}", "x", 0, f"S{i:03d}") for i in range(9)]
    with pytest.raises(DatasetError, match="9 subjects cannot make 10"):
        subject_folds(recs)
