"""What a new user meets first: a synthetic-only model says so on every output, a still photo is handled, a
port in use and a bad argument are one line each."""

import contextlib
import io
import socket
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from dfer.checkpoint import load_checkpoint, save_checkpoint
from dfer.cli import main
from dfer.data.video import open_source
from dfer.inference.people import available as people_available
from synthetic import face_frames, write_face_video


@pytest.fixture(scope="module")
def synthetic_ckpt(ckpt, tmp_path_factory):
    """The test model, as if trained only on `dfer synth`."""
    c = load_checkpoint(ckpt)
    c.split = {**c.split, "synthetic": True, "dataset": "synth"}
    return save_checkpoint(tmp_path_factory.mktemp("synth") / "synthetic.pt", c)


def _predict(args) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main(["predict", *map(str, args)])
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def both(ckpt, synthetic_ckpt, tmp_path_factory):
    """The same video through the same weights, once as a real model and once as a synthetic-only one."""
    tmp = tmp_path_factory.mktemp("warn")
    video = write_face_video(tmp / "talk.mp4", n=36, size=(160, 120))
    outs = {}
    for name, model in (("plain", ckpt), ("synthetic", synthetic_ckpt)):
        rc, printed = _predict([video, "--checkpoint", model, "--out", tmp / name, "--stride", "8", "--window", "0.8",
                                "--quiet"])
        assert rc == 0, printed
        outs[name] = (tmp / name / "talk", printed)
    return outs


def test_a_synthetic_model_says_so_in_every_csv(both):
    folder = both["synthetic"][0]
    for name in ("predictions.csv", "tracks.csv", "episodes.csv"):
        df = pd.read_csv(folder / name)  # still a plain table pandas reads
        assert df.columns[-1] == "model_warning" and df["model_warning"].str.contains("SYNTHETIC").all(), name
    plain = pd.read_csv(both["plain"][0] / "predictions.csv")
    assert "model_warning" not in plain.columns


def test_a_synthetic_model_says_so_on_every_frame_of_the_video(both):
    def bottom_luma(folder):  # the median grey level of each frame's bottom rows (the band, not its text)
        return [float(np.median(f.luma(0, f.height - 8, f.width, f.height)))
                for f in open_source(folder / "annotated.mp4").decoded()]

    synthetic, plain = bottom_luma(both["synthetic"][0]), bottom_luma(both["plain"][0])
    assert len(synthetic) == len(plain) == 36
    assert all(s < 0.5 * p for s, p in zip(synthetic, plain)), (synthetic, plain)  # the dark band, on every frame


def test_a_synthetic_model_says_so_on_the_timeline_and_the_people_sheet(both):
    def image(folder, name):
        return cv2.imread(str(folder / name))

    a, b = image(both["synthetic"][0], "timeline.png"), image(both["plain"][0], "timeline.png")
    assert a.shape[0] > b.shape[0] or not np.array_equal(a, b)  # the warning line
    if people_available():
        sheet, clean = image(both["synthetic"][0], "people.jpg"), image(both["plain"][0], "people.jpg")
        assert sheet.shape[0] > clean.shape[0]  # a band under the faces
    assert "synthetic" in both["synthetic"][1]  # and the console


def test_a_still_photo_gets_one_window_per_face_and_says_so(ckpt, tmp_path):
    photo = tmp_path / "group.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(face_frames(1, (320, 240))[0], cv2.COLOR_RGB2BGR))
    rc, printed = _predict([photo, "--checkpoint", ckpt, "--out", tmp_path / "out"])
    assert rc == 0, printed
    folder = tmp_path / "out" / "group"
    assert (folder / "annotated.jpg").is_file() and not (folder / "timeline.png").exists()
    summary = pd.read_json(folder / "summary.json", typ="series")
    assert summary["frames"] == 1 and "without the temporal information" in summary["still_note"]
    assert len(pd.read_csv(folder / "predictions.csv")) == 1
    assert "real time" not in printed  # a photo has no real-time factor


def test_a_port_in_use_is_one_line_before_anything_loads(ckpt):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, lines
    assert f"port {port} on 127.0.0.1 is in use" in lines[0] and "--port" in lines[0]


def test_a_bad_argument_is_one_line_and_where_to_read_more(ckpt):
    r = subprocess.run([sys.executable, "-m", "dfer.cli", "predict", "x.mp4", "--checkpoint", str(ckpt), "--stride", "-3"],
                       capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 2, lines
    assert lines[0].startswith("dfer predict: error: argument --stride") and lines[1] == "(see: dfer predict --help)"


def test_a_text_file_named_mp4_is_named_once(ckpt, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n" * 20)
    rc, printed = _predict([fake, "--checkpoint", ckpt, "--out", tmp_path / "out", "--quiet"])
    line = next(x for x in printed.splitlines() if "notes.mp4" in x)
    assert "not a readable video" in line and line.count("not a readable video") == 1, line
