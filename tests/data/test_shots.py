"""Shot cuts: a hard cut ends every face track, in inference and in `dfer prepare`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfer.data.extract import extract_face_clip
from dfer.data.face_settings import FaceSettings
from dfer.data.faces import make_detector
from dfer.data.shots import ShotCuts
from dfer.data.tracking import FaceTracker
from dfer.data.video import write_video
from synthetic import face_frames

SIZE = (160, 120)


def two_shots(first: int = 30, second: int = 40) -> list[np.ndarray]:
    """Two shots of one face at the same place: another person (skin) in another room (background)."""
    a = face_frames(first, SIZE, background=(70, 90, 110), skin=(210, 175, 150))
    b = face_frames(second, SIZE, background=(160, 120, 60), skin=(150, 110, 90))
    return a + b


def test_a_cut_is_found_where_the_shot_changes_only():
    cuts = ShotCuts()
    found = [i for i, f in enumerate(two_shots()) if cuts.is_cut(f)]
    assert found == [30]


def test_a_flash_is_one_cut_at_most():
    frames = face_frames(60, SIZE)
    flash = frames[:20] + [np.full_like(frames[0], 255)] + frames[21:]  # one white frame
    cuts = ShotCuts(min_shot=15)
    assert [i for i, f in enumerate(flash) if cuts.is_cut(f)] == [20]  # the return a frame later is no second cut


def test_a_zero_threshold_finds_no_cut():
    off = ShotCuts(threshold=0)
    assert not any(off.is_cut(f) for f in two_shots())


def test_no_track_crosses_a_cut():
    settings = FaceSettings(detect_every=3)
    tracker = FaceTracker(make_detector(settings), settings)
    out = list(tracker.run(two_shots()))
    assert tracker.cuts == [30] and [tf.index for tf in out if tf.cut] == [30]
    before = {tid for tf in out[:30] for tid in tf.faces}
    after = {tid for tf in out[30:] for tid in tf.faces}
    assert before and after and not before & after
    assert out[30].faces  # the new shot's first frame is a detection frame


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data.video import open_source
    from dfer.inference import InferenceSettings, Recognizer
    from dfer.inference.predict import analyse, write_outputs
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    tmp = tmp_path_factory.mktemp("cut")
    model = build_model(name="dfer_r2plus1d_18_half", num_classes=3)  # random weights: the boxes are the point
    pre = Preprocess(num_frames=4, size=32, face=FaceSettings(size=48).to_dict(), clip_seconds=0.4)
    ckpt = save_checkpoint(tmp / "m.pt", make_checkpoint(model=model, class_names=["a", "b", "c"], preprocess=pre))
    video = write_video(tmp / "cut.mp4", two_shots(), fps=25)
    rec = Recognizer.from_checkpoint(ckpt, backend="torch", settings=InferenceSettings(window_seconds=0.4, stride=5))
    result = analyse(rec, open_source(video), tmp / "out")
    write_outputs(result, tmp / "out")
    return result, tmp / "out"


def test_predict_ends_the_track_at_the_cut(predicted):
    result, _ = predicted
    assert result.cuts == [30]
    assert len(result.track_ids) == 2


def test_predict_never_scores_a_window_across_a_cut(predicted):
    for w in predicted[0].windows:
        assert w.end_frame < 30 or w.start_frame >= 30, (w.start_frame, w.end_frame)


def test_predict_writes_the_cuts_in_the_summary(predicted):
    summary = json.loads((predicted[1] / "summary.json").read_text())
    assert summary["shot_cuts"] == [{"frame": 30, "time_s": 1.2}]


def test_prepare_keeps_one_shots_frames(tmp_path):
    video = write_video(tmp_path / "clip.mp4", two_shots(first=20, second=40), fps=25)
    settings = FaceSettings(size=48)
    clip = extract_face_clip(video, make_detector(settings), settings)
    assert clip.num_tracks == 2
    assert min(clip.frame_indices) >= 20  # the longer shot's face (the main face: size x time on screen)


def test_a_negative_threshold_is_refused():
    with pytest.raises(Exception, match="cut_threshold must be >= 0"):
        FaceSettings(cut_threshold=-1.0)
