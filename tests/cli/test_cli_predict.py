"""`dfer predict`: several inputs in one call, one folder of outputs each, failures recorded, reruns skip."""

import functools
import http.server
import json
import threading

import numpy as np
import pandas as pd
import pytest

from dfer.cli import main
from dfer.data import probe, read_video
from synthetic import make_bad_inputs, write_face_video, write_frame_folder


@pytest.fixture(scope="module")
def batch(ckpt, tmp_path_factory):
    """One call on a talking face, a video without a face, a text file and a frame folder."""
    tmp = tmp_path_factory.mktemp("predict")
    bad = make_bad_inputs(tmp / "in")
    video = write_face_video(tmp / "in" / "talk.mp4", n=36, size=(160, 120))
    frames = write_frame_folder(tmp / "in" / "frames_clip", n=24, size=(96, 96))
    out = tmp / "out"
    args = ["predict", str(video), str(bad["no_face"]), str(bad["text"]), str(frames), "--checkpoint", str(ckpt),
            "--out", str(out), "--stride", "8", "--window", "0.8", "--detect-every", "2", "--quiet"]
    return args, video, out


@pytest.fixture(scope="module")
def first_run(batch):
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(batch[0])
    return rc, printed.getvalue()


def test_predict_goes_on_past_a_bad_input_counting_it(first_run):
    rc, printed = first_run
    assert rc == 0 and "3 done, 0 already done (skipped), 1 failed" in printed


def test_predict_writes_a_window_table_with_a_summary(batch, first_run):
    talk = batch[2] / "talk"
    df = pd.read_csv(talk / "predictions.csv")
    assert len(df) >= 2 and set(df["track_id"]) == {0}
    summary = json.loads((talk / "summary.json").read_text())
    label = summary["tracks"][0]["label"]
    assert label in ["right", "left", "still"] or label.startswith("mixed: ")  # a near tie says so


def test_predict_writes_every_frames_box_with_its_source(batch, first_run):
    tracks = pd.read_csv(batch[2] / "talk" / "tracks.csv")
    assert list(tracks.columns) == ["frame", "time_s", "track_id", "person_id", "x0", "y0", "x1", "y1", "source"]
    assert len(tracks) == 36 and list(tracks["frame"]) == list(range(36))
    assert tracks["time_s"][25] == pytest.approx(1.0)
    assert list(tracks["source"][:4]) == ["detected", "tracked", "detected", "tracked"]  # --detect-every 2


def test_predict_records_the_face_settings_the_user_overrode(batch, first_run):
    settings = json.loads((batch[2] / "talk" / "summary.json").read_text())["settings"]
    assert settings["face"]["detect_every"] == 2
    assert settings["face_overrides"]["detect_every"]["why"] == "user override"


def test_predict_draws_an_annotated_video_of_every_frame(batch, first_run):
    video, talk = batch[1], batch[2] / "talk"
    info, ann = probe(video), probe(talk / "annotated.mp4")
    assert ann.num_frames == info.num_frames == 36 and ann.fps == pytest.approx(info.fps)
    frames_out, _ = read_video(talk / "annotated.mp4")
    frames_in, _ = read_video(video)
    assert np.abs(frames_out.astype(int) - frames_in.astype(int)).mean() > 1  # something was drawn
    assert (talk / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_a_video_without_a_face_gets_empty_outputs_with_a_message(batch, first_run):
    nf = batch[2] / "no_face"
    assert len(pd.read_csv(nf / "predictions.csv")) == 0
    assert json.loads((nf / "summary.json").read_text())["message"] == "no face found"
    assert probe(nf / "annotated.mp4").num_frames == 10


def test_a_frame_folder_is_an_input_like_a_video(batch, first_run):
    assert len(pd.read_csv(batch[2] / "frames_clip" / "predictions.csv")) >= 1


def test_a_file_that_is_not_a_video_is_recorded_by_name(batch, first_run):
    fails = pd.read_csv(batch[2] / "failures.csv")
    assert len(fails) == 1 and "notes.mp4" in fails["reason"][0] and "not a readable video" in fails["reason"][0]


def test_a_rerun_skips_what_is_done(batch, first_run, capsys):
    assert main(batch[0]) == 0
    assert "0 done, 3 already done (skipped), 1 failed" in capsys.readouterr().out


def test_predict_refuses_a_foreign_checkpoint_in_one_line(tmp_path, capsys):
    import torch

    bad = tmp_path / "model.pt"
    torch.save({"state_dict": {}}, bad)
    video = write_face_video(tmp_path / "v.mp4", n=8)
    assert main(["predict", str(video), "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a dfer checkpoint" in err and "Traceback" not in err


def test_a_stream_url_is_read_live(ckpt, tmp_path):
    """An http:// URL goes through the live path: one pass, annotated frames written as they come."""
    video = write_face_video(tmp_path / "served" / "cam.mp4", n=30, size=(160, 120))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cam.mp4"
        out = tmp_path / "out"
        rc = main(["predict", "--source", url, "--checkpoint", str(ckpt), "--out", str(out), "--stride", "8",
                   "--window", "0.8", "--detect-every", "2", "--quiet"])
    finally:
        server.shutdown()
    assert rc == 0
    folder = next(out.iterdir())
    assert probe(folder / "annotated.mp4").num_frames == 30
    assert len(pd.read_csv(folder / "predictions.csv")) >= 1
