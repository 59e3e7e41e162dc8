import numpy as np
import pytest

import conftest
import dfer
from dfer.inference import InferenceSettings, Recognizer
from synthetic import face_frames, write_face_video, write_frame_folder

FAST = InferenceSettings(**conftest.FAST)


@pytest.fixture(scope="module")
def one_face(ckpt, tmp_path_factory):
    video = write_face_video(tmp_path_factory.mktemp("one") / "one.mp4", n=40, size=(160, 120))
    rec = dfer.Recognizer.from_checkpoint(ckpt, device="cpu", settings=FAST)
    return rec, rec.predict_video(video)


def test_the_face_is_followed_on_nearly_every_frame(one_face):
    res = one_face[1]
    assert res.num_frames == 40 and res.fps == 25 and res.track_ids == [0]
    assert len(res.boxes[0]) >= 36


def test_windows_come_every_stride_once_a_window_is_buffered_plus_one_at_the_end(one_face):
    res = one_face[1]
    ends = [w.end_frame for w in res.windows]  # every 8 frames once 20 frames (0.8 s) are buffered
    assert ends[0] == 19 and all(b - a == 8 for a, b in zip(ends, ends[1:-1])) and ends[-1] == 39
    w = res.windows[0]
    assert w.end_frame - w.start_frame == 19 and w.start_time == 0 and w.end_time == pytest.approx(0.8)


def test_a_window_holds_a_probability_per_class_with_its_label(one_face):
    rec, res = one_face
    w = res.windows[0]
    assert w.probs.shape == (3,) and w.probs.sum() == pytest.approx(1, abs=1e-5) and w.label in rec.class_names


def test_the_tracks_table_holds_every_box(one_face):
    res = one_face[1]
    tracks = res.tracks_dataframe()
    assert len(tracks) == len(res.boxes[0]) and set(tracks["source"]) == {"detected", "tracked"}


def test_the_window_table_has_a_probability_column_per_class(one_face):
    res = one_face[1]
    df = res.to_dataframe()
    assert list(df.columns[:5]) == ["track_id", "person_id", "start_frame", "end_frame", "start_s"]
    assert {"p_right", "p_left", "p_still"} <= set(df.columns) and len(df) == len(res.windows)


def test_the_summary_has_a_line_per_track_with_the_settings(one_face):
    res = one_face[1]
    s = res.summary()
    assert len(s["tracks"]) == 1 and s["tracks"][0]["windows"] == len(res.windows) and "message" not in s
    assert s["realtime_factor"] > 0 and s["settings"]["window_frames"] == 20


def test_the_recognisers_clip_is_the_evaluation_transforms_output_bit_for_bit(one_face):
    from dfer.data.faces import Box
    from dfer.data.tracking import TrackedBox
    from dfer.inference.windows import TrackBuffer, WindowScheduler

    rec = one_face[0]
    buf = TrackBuffer(0, 10, 64)
    for k, crop in enumerate(face_frames(10, (64, 64))):
        buf.crops.append((k, crop))
    buf.box = TrackedBox(Box(0, 0, 10, 10), True)
    clip, tag = WindowScheduler.clip(buf, rec.preprocess)
    expected = rec.preprocess.eval_transform()(np.stack([buf.crops[i][1] for i in tag.frames])).numpy()
    assert clip.shape == (3, 4, 32, 32) and np.array_equal(clip, expected)


def test_a_window_shorter_than_the_minimum_track_still_comes_once_the_track_lasts():
    """At a low frame rate a window can span fewer frames than min_track_frames: the track's length (frames
    seen) decides, not the crops a window holds, or no window would ever come."""
    from dfer.data.faces import Box
    from dfer.data.tracking import TrackedBox
    from dfer.inference.windows import WindowScheduler

    sched = WindowScheduler(span=5, stride=3, min_frames=8, crop_size=16, margin=0.2, num_frames=4)
    frame = np.zeros((48, 48, 3), np.uint8)
    face = {0: TrackedBox(Box(10, 10, 30, 30), True)}
    due_at = []
    for i in range(12):
        for b in sched.add(i, frame, face)[0]:
            due_at.append(i)
            b.last_emit = i  # as making its clip does
    assert due_at == [7, 10]  # first once the track has 8 frames, then every 3


def test_two_faces_get_stable_separate_tracks(ckpt, tmp_path):
    video = write_face_video(tmp_path / "two.mp4", n=30, size=(224, 112), faces=2)
    face = {"detect_every": 2, "detect_size": 480}
    rec = Recognizer.from_checkpoint(ckpt, settings=InferenceSettings(stride=10, window_seconds=0.6, min_track_frames=4,
                                                                      face=face))
    res = rec.predict_video(video)
    assert res.track_ids == [0, 1]
    centres = {t: np.mean([(b.box.x0 + b.box.x1) / 2 for b in boxes.values()]) for t, boxes in res.boxes.items()}
    assert sorted(centres.values())[0] < 112 < sorted(centres.values())[1]
    assert all(len(b) >= 26 for b in res.boxes.values())  # each face keeps its id over the video
    assert len(res.summary()["tracks"]) == 2


def test_real_media(ckpt, media_dir, tmp_path):
    rec = Recognizer.from_checkpoint(ckpt)
    res = rec.predict_video(media_dir / "single_face.mp4")
    assert res.track_ids == [0] and len(res.boxes[0]) == 72  # the man's face on every frame
    none = rec.predict_video(media_dir / "no_face.mp4")
    assert none.windows == [] and none.summary()["message"] == "no face found"


def test_detector_none_treats_inputs_as_face_crops(ckpt, tmp_path):
    folder = write_frame_folder(tmp_path / "crops", n=20, size=(48, 48))
    rec = Recognizer.from_checkpoint(ckpt, settings=InferenceSettings(stride=8, window_seconds=0.4,
                                                                      min_track_frames=4, face={"detector": "none"}))
    res = rec.predict_video(folder)
    assert res.settings.face.detector == "none" and res.track_ids == [0]
    assert tuple(res.boxes[0][5].box.as_array()) == (0.0, 0.0, 48.0, 48.0)  # the whole frame is the face
