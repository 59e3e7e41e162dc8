"""Direct tests of the clip transforms, the report writer and the renderer."""

import numpy as np
import pytest
import torch

from dfer.data import FaceSettings
from dfer.data.faces import Box
from dfer.data.tracking import TrackedBox
from dfer.data.transforms import ClipTransformConfig, EvalTransform, TrainTransform, resize_frames, to_tensor
from dfer.engine.report import recall_table, write_fold_report
from dfer.engine.results import FoldResult
from dfer.inference.recognizer import VideoPrediction, WindowPrediction
from dfer.inference.render import draw_track, nearest_window, plot_timeline, window_lookup


def clip(t=4, h=40, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_to_tensor_normalises_exactly():
    frames = np.full((2, 4, 4, 3), 255, np.uint8)
    x = to_tensor(frames, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))  # (3, T, S, S)
    assert x.shape == (3, 2, 4, 4)
    assert torch.allclose(x[:, 0, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
    out = torch.empty(3, 2, 4, 4)
    assert to_tensor(frames, (0.5,) * 3, (0.25, 0.5, 1.0), out=out).data_ptr() == out.data_ptr()


def test_eval_transform_is_a_plain_resize():
    frames = clip()
    raw = EvalTransform(ClipTransformConfig(size=16), raw=True)(frames)
    assert raw.shape == (4, 16, 16, 3) and np.array_equal(raw, resize_frames(frames, 16))
    assert np.array_equal(resize_frames(raw, 16), raw)  # already the size: unchanged


def test_train_transform_is_seeded_and_the_same_for_every_frame():
    frames = np.repeat(clip(1), 4, axis=0)  # four identical frames
    cfg = ClipTransformConfig(size=24)
    t = TrainTransform(cfg, raw=True)
    a = t(frames, torch.Generator().manual_seed(5))
    b = t(frames, torch.Generator().manual_seed(5))
    c = t(frames, torch.Generator().manual_seed(6))
    assert a.shape == (4, 24, 24, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert all(np.array_equal(a[0], a[k]) for k in range(1, 4))  # one crop, flip and colour for the clip
    plain = TrainTransform(ClipTransformConfig(size=40, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0, brightness=0.0,
                                               contrast=0.0, saturation=0.0), raw=True)
    assert np.array_equal(plain(frames, torch.Generator().manual_seed(0)), frames)  # augmentation off: identity
    flipped = TrainTransform(ClipTransformConfig(size=40, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0, brightness=0.0,
                                                 contrast=0.0, saturation=0.0), raw=True)
    assert np.array_equal(flipped(frames, torch.Generator().manual_seed(0)), frames[:, :, ::-1])


def _report(war, uar, rec):
    return {"war": war, "uar": uar, "per_class_recall": rec, "support": [3, 1], "macro_f1": 0.5,
            "confusion": [[2, 1], [0, 1]]}


def test_recall_table_layout():
    table = recall_table([("model A", _report(0.75, 0.8333, [0.6667, 1.0])), ("skipped", None)], ["Happy", "Sad"])
    lines = table.splitlines()
    assert lines[0] == "| model | Happy (3) | Sad (1) | UAR | WAR |"
    assert lines[2] == "| model A | 66.67 | 100.00 | 83.33 | 75.00 |" and len(lines) == 3
    assert "n/a" in recall_table([("x", _report(0.5, 0.5, [float("nan"), 0.5]))], ["Happy", "Sad"])


def test_fold_report_names_the_selection_and_the_numbers(tmp_path):
    sel = _report(0.75, 0.8333, [0.6667, 1.0])
    m = {"fold": "1", "protocol": "kfold", "class_names": ["Happy", "Sad"],
         "split": {"dataset": "toy", "sizes": {"train": 10, "val": 2, "test": 4}},
         "selected": {"epoch": 2, "selection": "best validation uar", "test": sel},
         "last": {"epoch": 3, "test": _report(0.5, 0.5, [0.3333, 1.0])},
         "history": [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0, "train_acc": 0.5, "val_war": 0.5, "val_uar": 0.5,
                      "lr": 1e-3} for e in (1, 2, 3)]}
    write_fold_report(tmp_path, FoldResult.from_dict(m))
    text = (tmp_path / "report.md").read_text()
    assert "Model selection: best validation uar (epoch 2 of 3)" in text
    assert "| selected (epoch 2) | 66.67 | 100.00 | 83.33 | 75.00 |" in text
    assert "| last (epoch 3) | 33.33 | 100.00 | 50.00 | 50.00 |" in text
    for png in ("confusion.png", "confusion_normalized.png", "curves.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def _prediction():
    names = ["a", "b"]
    res = VideoPrediction("v.mp4", 10.0, 30, 64, 48, names)
    for tid in (0, 1):
        for f in range(30):
            res.boxes.setdefault(tid, {})[f] = TrackedBox(Box(5 + 30 * tid, 5, 25 + 30 * tid, 30), f % 3 == 0)
    for end in (9, 19, 29):
        res.windows.append(WindowPrediction(0, end - 9, end, (end - 9) / 10, (end + 1) / 10, (5, 5, 25, 30),
                                            np.array([0.9, 0.1], np.float32), "a"))
    return res


def test_draw_track_draws_box_label_and_bars():
    frame = np.zeros((120, 160, 3), np.uint8)
    draw_track(frame, 0, (20, 20, 60, 70), np.array([0.2, 0.8]), ["happy", "sad"])
    box_colour = frame[45, 20]  # on the left edge of the box
    assert box_colour.max() > 100 and frame[45, 40].max() == 0  # the box is an outline, its inside untouched
    assert frame[20:70, 61:160].max() > 0  # the probability panel beside the box
    bare = np.zeros_like(frame)
    draw_track(bare, 0, (20, 20, 60, 70), None, ["happy", "sad"])  # no window yet: box and id only
    assert bare[22:, 62:].max() == 0  # the title sits above the box; nothing beside it


def test_nearest_window_and_timeline(tmp_path):
    res = _prediction()
    lookup = window_lookup(res)
    assert nearest_window(lookup, 0, 0).end_frame == 9 and nearest_window(lookup, 0, 16).end_frame == 19
    assert nearest_window(lookup, 0, 29).end_frame == 29 and nearest_window(lookup, 1, 5) is None
    plot_timeline(res, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    df = res.tracks_dataframe()
    assert len(df) == 60 and list(df["track_id"][:2]) == [0, 1] and df["source"][0] == "detected"


def test_face_settings_reach_the_checkpoint_preprocess():
    from dfer.checkpoint import Preprocess

    pre = Preprocess.from_dict(Preprocess(face=FaceSettings(detect_every=4).to_dict()).to_dict())
    assert FaceSettings.from_dict(pre.face).detect_every == 4


@pytest.mark.parametrize("size", [8, 33])
def test_resize_frames_shapes(size):
    assert resize_frames(clip(2, 20, 20), size).shape == (2, size, size, 3)


def test_annotated_video_draws_each_frame_with_its_nearest_window_and_person(tmp_path, monkeypatch):
    """Every frame gets, per face, the window nearest it and the face's person as its title; the frames
    come out in order, once each, and a face that never got a window is drawn without bars."""
    from dfer.data import read_video
    from dfer.inference import render

    res = _prediction()  # track 0: windows centred at 4.5, 14.5, 24.5; track 1: none
    for k, w in enumerate(res.windows):
        w.probs = np.array([k / 10, 1 - k / 10], np.float32)
    res.people = {0: "P1", 1: "P2"}
    drawn = []
    monkeypatch.setattr(render, "draw_track", lambda frame, tid, box, probs, names, label, colour:
                        drawn.append((int(frame[0, 0, 0]), tid, probs, label, colour)))
    frames = (np.full((48, 64, 3), f, np.uint8) for f in range(40))  # the frame's index in its pixels
    assert render.write_annotated(res, frames, tmp_path / "a.mp4") == 30  # the analysed frames only
    assert read_video(tmp_path / "a.mp4")[0].shape[0] == 30
    lookup = window_lookup(res)
    got0 = [(f, p) for f, tid, p, *_ in drawn if tid == 0]
    assert [f for f, _ in got0] == list(range(30))
    for f, p in got0:
        assert np.allclose(p, nearest_window(lookup, 0, f).probs)
    assert all(p is None for _, tid, p, *_ in drawn if tid == 1)
    assert {(tid, label, colour) for _, tid, _, label, colour in drawn} == {(0, "P1", 0), (1, "P2", 1)}


def test_a_person_keeps_one_colour_across_tracks():
    from dfer.inference.render import person_colours

    res = _prediction()
    res.people = {0: "P1", 1: "P1"}
    assert person_colours(res) == {0: 0, 1: 0}
    res.people = {}
    assert person_colours(res) == {0: 0, 1: 1}


def test_the_title_names_the_person_and_the_probability(monkeypatch):
    import cv2

    titles = []
    real = cv2.putText
    monkeypatch.setattr(cv2, "putText", lambda img, text, *a: (titles.append(text), real(img, text, *a))[1])
    draw_track(np.zeros((120, 160, 3), np.uint8), 3, (20, 20, 60, 70), np.array([0.18, 0.82]), ["Sad", "Happy"],
               label="P1")
    draw_track(np.zeros((120, 160, 3), np.uint8), 3, (20, 20, 60, 70), np.array([0.18, 0.82]), ["Sad", "Happy"])
    assert titles[0] == "P1 Happy 0.82" and "#3 Happy 0.82" in titles


def test_normalize_without_torch_equals_the_loaders_tensor_bit_for_bit():
    from dfer.data.transforms import KINETICS_MEAN, KINETICS_STD, normalize, to_tensor

    frames = np.random.default_rng(0).integers(0, 256, (16, 112, 112, 3), dtype=np.uint8)
    for mean, std in ((KINETICS_MEAN, KINETICS_STD), ((0.5, 0.5, 0.5), (0.25, 0.2, 0.3))):
        assert np.array_equal(normalize(frames, mean, std), to_tensor(frames, mean, std).numpy())
