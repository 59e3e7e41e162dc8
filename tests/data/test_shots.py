"""Shot cuts: a hard cut ends every face track, in inference and in `dfer prepare`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dfer.data.extract import extract_face_clip
from dfer.data.face_settings import FaceSettings
from dfer.data.faces import make_detector
from dfer.data.frame import Frame
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


def cuts_of(frames, **rule) -> list[int]:
    """The frames the shot-cut rule marks, frames given as RGB arrays."""
    shots = ShotCuts(**rule)
    decided = [cut for f in frames for _, cut in shots.push(Frame.from_rgb(f))] + [cut for _, cut in shots.flush()]
    assert len(decided) == len(frames)
    return [i for i, cut in enumerate(decided) if cut]


def grey(frames):
    return [np.repeat(f.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2) for f in frames]


def test_a_cut_is_found_where_the_shot_changes_only():
    assert cuts_of(two_shots()) == [30]


def test_a_grey_cut_is_found_as_a_colour_one_is():
    assert cuts_of(grey(two_shots())) == [30]


def test_a_dim_cut_is_found():
    dark = [(f * 0.25).astype(np.uint8) for f in two_shots()]
    assert cuts_of(dark) == cuts_of(grey(dark)) == [30]


def test_the_same_framing_with_another_face_is_a_cut():
    a = face_frames(30, SIZE, skin=(210, 175, 150))
    b = face_frames(30, SIZE, skin=(120, 90, 70), seed=3)  # same room, same place: only the face changes
    assert cuts_of(grey(a + b)) == [30]


def test_a_flash_is_not_a_cut():
    frames = face_frames(60, SIZE)
    flash = frames[:20] + [np.full_like(frames[0], 255)] + frames[21:]  # one white frame and back
    assert cuts_of(flash) == []


def test_a_slow_pan_is_not_a_cut():
    rng = np.random.default_rng(0)
    wide = cv2.GaussianBlur(rng.integers(0, 255, (120, 600, 3), dtype=np.uint8), (9, 9), 3)
    assert cuts_of([wide[:, 2 * i : 2 * i + 160].copy() for i in range(200)]) == []


def test_a_fade_to_black_and_back_is_not_a_cut():
    frames = face_frames(60, SIZE)
    fade = [(f * abs(1 - i / 30)).astype(np.uint8) for i, f in enumerate(frames)]
    assert cuts_of(fade) == []


def test_colour_turning_grey_halfway_is_one_cut_at_most():
    frames = face_frames(80, SIZE)
    assert len(cuts_of(frames[:40] + grey(frames[40:]))) <= 1


def test_a_black_video_has_no_cut():
    assert cuts_of([np.zeros((120, 160, 3), np.uint8)] * 40) == []


def test_a_one_frame_video_is_decided():
    assert cuts_of(face_frames(1, SIZE)) == []


def test_a_change_of_frame_size_is_a_cut():
    small = face_frames(10, (80, 60))
    assert cuts_of(face_frames(20, SIZE) + small) == [20]


def test_shots_are_never_shorter_than_min_shot():
    a, b = two_shots(first=10, second=40), face_frames(30, SIZE, background=(20, 200, 20))
    assert cuts_of(a + b, min_shot=5) == [10, 50]
    assert cuts_of(a + b, min_shot=15) == [50]  # the cut at 10 is too soon after the start


def test_a_zero_ratio_finds_no_cut():
    assert cuts_of(two_shots(), ratio=0) == []


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
    from dfer.inference.predict import analyse
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    tmp = tmp_path_factory.mktemp("cut")
    model = build_model(name="dfer_r2plus1d_18_half", num_classes=3)  # random weights: the boxes are the point
    pre = Preprocess(num_frames=4, size=32, face=FaceSettings(size=48).to_dict(), clip_seconds=0.4)
    ckpt = save_checkpoint(tmp / "m.pt", make_checkpoint(model=model, class_names=["a", "b", "c"], preprocess=pre))
    video = write_video(tmp / "cut.mp4", two_shots(), fps=25)
    rec = Recognizer.from_checkpoint(ckpt, backend="torch", settings=InferenceSettings(window_seconds=0.4, stride=5))
    result = analyse(rec, open_source(video), tmp / "out")
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


def test_a_negative_ratio_is_refused():
    with pytest.raises(Exception, match="cut_ratio must be >= 0"):
        FaceSettings(cut_ratio=-1.0)


def test_a_stored_zero_threshold_still_means_no_cuts():
    assert FaceSettings.from_dict({"version": 2, "cut_threshold": 0.0}).cut_ratio == 0.0


def test_the_old_flag_says_what_replaced_it(capsys):
    from dfer.cli import main

    assert main(["prepare", "folder", "--root", ".", "--out", "x", "--cut-threshold", "10"]) == 2
    assert "replaced by --cut-ratio and --cut-min" in capsys.readouterr().err


@pytest.fixture(scope="module")
def resized(tmp_path_factory):
    """A face at 160x120 for 20 frames, then at 320x240 for 20 (one video, MJPEG)."""
    from hostile import size_switch

    def frame(i, w, h):  # the same picture at the frame's size
        return cv2.resize(face_frames(i + 1, (160, 120))[-1], (w, h))

    return size_switch(tmp_path_factory.mktemp("resized") / "v.mkv", [(20, 160, 120), (20, 320, 240)], frames=frame)


def test_a_resolution_change_is_a_new_shot_in_predict(resized):
    from dfer.data.video import open_source

    settings = FaceSettings(detect_every=2, detect_size=320)
    tracker = FaceTracker(make_detector(settings), settings)
    out = list(tracker.run(open_source(resized).decoded()))
    assert tracker.cuts == [20] and len(out) == 40
    before, after = {t for f in out[:20] for t in f.faces}, {t for f in out[20:] for t in f.faces}
    assert before and after and not before & after
    assert max(tb.box.x1 for f in out[20:] for tb in f.faces.values()) > 160  # boxes in the new frame's pixels


def test_a_resolution_change_is_a_new_shot_in_prepare(resized):
    settings = FaceSettings(size=48, detect_size=320)
    clip = extract_face_clip(resized, make_detector(settings), settings)
    assert clip.num_tracks == 2 and (min(clip.frame_indices) >= 20 or max(clip.frame_indices) < 20)
