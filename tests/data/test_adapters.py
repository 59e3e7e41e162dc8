"""MAFW, FERV39k and peer split lists: fake trees in the exact on-disk layouts."""

import json

import cv2
import pytest

from dfer.data import ClipCache, FaceSettings, load_spec, prepare_dataset
from dfer.data.adapters import FERV39K_CLASSES, MAFW_CLASSES
from dfer.data.video import list_frame_files
from dfer.errors import DatasetError
from synthetic import face_frames, write_face_video

MAFW_SET1 = (7333, 1839)  # official single-label protocol, set_1 train / test
FERV_SIZES = (31088, 7847)


def _frames(folder, n=6, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(face_frames(n, (64, 64))):
        name = names[i] if names else f"{i + 1:03d}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())  # CRLF, as the real files


def make_mafw(root, clips=12, full=False):
    """Clips with 5-digit, non-contiguous ids; `full`: split files of the official sizes (no media)."""
    if full:
        ids = [f"{i:05d}" for i in range(1, 9172 * 2, 2)][:9172]
        train_n = MAFW_SET1[0]
    else:
        ids = [f"{i:05d}" for i in range(3, 3 + 7 * clips, 7)]
        train_n = clips - 3
        for k, cid in enumerate(ids):
            write_face_video(root / "data" / "clips" / f"{cid}.mp4", n=8, seed=k)
    labels = {cid: MAFW_CLASSES[k % 11] for k, cid in enumerate(ids)}
    for s in range(1, 6):
        rot = ids[(s - 1) * 5:] + ids[:(s - 1) * 5]
        d = root / "Train & Test Set" / "single" / "no_caption" / f"set_{s}"
        _write(d / "train.txt", [f"{c}.mp4 {labels[c]}" for c in rot[:train_n]])
        _write(d / "test.txt", [f"{c}.mp4 {labels[c]}" for c in rot[train_n:]])
    return root


def make_ferv(root, per_class=2, full=False):
    lines = {"train": [], "test": []}
    if full:
        for part, n in zip(("train", "test"), FERV_SIZES):
            lines[part] = [f"Scene{i % 22}/{FERV39K_CLASSES[i % 7]}/{i:05d} {FERV39K_CLASSES[i % 7]}" for i in range(n)]
    else:
        for k, cls in enumerate(FERV39K_CLASSES):
            for j in range(per_class):
                rel = f"Action/{cls}/{k * 10 + j + 1:04d}"
                names = [f"{i}.jpg" for i in (1, 2, 10, 11, 3, 20)]  # numeric, not string, order
                _frames(root / "2_ClipsforFaceCrop" / rel, names=names)
                lines["train" if j == 0 else "test"].append(f"{rel} {cls}")
    d = root / "4_setups" / "All_scenes"
    d.mkdir(parents=True, exist_ok=True)
    (d / "train_All.csv").write_text("\n".join(lines["train"]) + "\n")  # no header: the first row is a clip
    (d / "test_All.csv").write_text("\n".join(lines["test"]) + "\n")
    return root


@pytest.fixture(scope="module")
def mafw_full(tmp_path_factory):
    return make_mafw(tmp_path_factory.mktemp("mafw") / "MAFW_full", full=True)


def test_mafw_reads_the_official_split_sizes(mafw_full):
    spec = load_spec("mafw", mafw_full)
    assert len(spec.records) == 9172 and spec.class_names == MAFW_CLASSES
    f1 = spec.official["official"][0]
    assert (len(f1["train"]), len(f1["test"])) == MAFW_SET1 and len(spec.official["official"]) == 5
    assert spec.records[0].clip_id == "00001" and spec.records[0].source.endswith("data/clips/00001.mp4")


def test_mafw_prepares_with_its_five_official_folds(tmp_path):
    root = make_mafw(tmp_path / "MAFW")
    s = prepare_dataset(load_spec("mafw", root), tmp_path / "cache", FaceSettings(size=48, max_frames=8), progress=False)
    assert s.ok == 12 and s.failed == 0
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    assert splits["default"] == "official" and len(splits["protocols"]["official"]["folds"]) == 5
    assert len(splits["protocols"]["official"]["folds"][0]["test"]) == 3


def test_mafw_names_the_file_line_of_an_unknown_class(mafw_full):
    bad = mafw_full / "Train & Test Set" / "single" / "no_caption" / "set_2" / "test.txt"
    kept = bad.read_bytes()
    bad.write_bytes(b"00003.mp4 anger\r\n00010.mp4 Joy\r\n")
    try:
        with pytest.raises(DatasetError, match=r"set_2/test.txt:2: class 'Joy' is not one of MAFW's 11"):
            load_spec("mafw", mafw_full)
    finally:
        bad.write_bytes(kept)


def test_ferv39k_reads_its_first_row_as_a_clip_not_a_header(tmp_path):
    full = load_spec("ferv39k", make_ferv(tmp_path / "FERV_full", full=True))
    f = full.official["official"][0]
    assert (len(f["train"]), len(f["test"])) == FERV_SIZES


@pytest.fixture
def ferv(tmp_path):
    return make_ferv(tmp_path / "FERV39k")


def test_ferv39k_frames_are_read_in_numeric_order(ferv):
    order = [p.name for p in list_frame_files(ferv / "2_ClipsforFaceCrop" / "Action" / "Angry" / "0001")]
    assert order == ["1.jpg", "2.jpg", "3.jpg", "10.jpg", "11.jpg", "20.jpg"]


def test_ferv39k_prepares_face_crops_with_the_official_split(ferv, tmp_path):
    spec = load_spec("ferv39k", ferv)
    assert spec.default_detector == "none" and spec.records[0].clip_id == "Action_Angry_0001"
    s = prepare_dataset(spec, tmp_path / "cache", FaceSettings(detector="none", size=32), progress=False)
    assert s.ok == 14
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    assert splits["default"] == "official"
    fold = splits["protocols"]["official"]["folds"][0]
    assert len(fold["test"]) == 7 and len(fold["train"]) + len(fold["val"]) == 7
    assert ClipCache(tmp_path / "cache").trace("Action_Angry_0001")["frame"].tolist() == list(range(6))
