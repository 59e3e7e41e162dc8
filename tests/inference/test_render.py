"""dfer.inference.render: boxes, titles and bars on frames, the annotated video, the timeline."""

import numpy as np
import pytest

from dfer.data.faces import Box
from dfer.data.tracking import TrackedBox
from dfer.inference.prediction import VideoPrediction, WindowPrediction
from dfer.inference.render import draw_track, nearest_window, plot_timeline, window_lookup


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


def test_a_face_is_an_outlined_box_with_a_probability_panel_beside_it():
    frame = np.zeros((120, 160, 3), np.uint8)
    draw_track(frame, 0, (20, 20, 60, 70), np.array([0.2, 0.8]), ["happy", "sad"])
    assert frame[45, 20].max() > 100 and frame[45, 40].max() == 0  # the left edge is drawn, the inside untouched
    assert frame[20:70, 61:160].max() > 0


def test_a_face_without_a_window_yet_gets_no_panel():
    bare = np.zeros((120, 160, 3), np.uint8)
    draw_track(bare, 0, (20, 20, 60, 70), None, ["happy", "sad"])
    assert bare[22:, 62:].max() == 0  # the title sits above the box; nothing beside it


def test_nearest_window_is_the_closest_window_of_the_same_track():
    lookup = window_lookup(_prediction())
    assert nearest_window(lookup, 0, 0).end_frame == 9 and nearest_window(lookup, 0, 16).end_frame == 19
    assert nearest_window(lookup, 0, 29).end_frame == 29 and nearest_window(lookup, 1, 5) is None


def test_the_timeline_is_a_png(tmp_path):
    plot_timeline(_prediction(), tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_the_tracks_table_has_a_row_per_face_per_frame():
    df = _prediction().tracks_dataframe()
    assert len(df) == 60 and list(df["track_id"][:2]) == [0, 1] and df["source"][0] == "detected"


@pytest.fixture
def annotated(tmp_path, monkeypatch):
    from dfer.inference import render

    res = _prediction()  # track 0: windows centred at 4.5, 14.5, 24.5; track 1: none
    for k, w in enumerate(res.windows):
        w.probs = np.array([k / 10, 1 - k / 10], np.float32)
    res.people = {0: "P1", 1: "P2"}
    drawn = []
    real = render.draw_track

    def record(part, tid, box, probs, names, *, label, colour, origin, frame_size):
        drawn.append((int(part[-1, -1, 0]), tid, probs, label, colour))  # a corner the drawing never reaches
        real(part, tid, box, probs, names, label=label, colour=colour, origin=origin, frame_size=frame_size)

    monkeypatch.setattr(render, "draw_track", record)
    frames = (np.full((48, 64, 3), 4 * f, np.uint8) for f in range(40))  # the frame's index in its pixels
    written = render.write_annotated(res, frames, tmp_path / "a.mp4")
    return res, drawn, written, tmp_path / "a.mp4"


def test_the_annotated_video_holds_the_analysed_frames_only(annotated):
    from dfer.data import read_video

    _, _, written, path = annotated
    assert written == 30 and read_video(path)[0].shape[0] == 30


def test_the_annotated_video_draws_each_face_with_the_window_nearest_its_frame(annotated):
    res, drawn, _, _ = annotated
    lookup = window_lookup(res)
    got0 = [(round(f / 4), p) for f, tid, p, *_ in drawn if tid == 0]
    assert [f for f, _ in got0] == list(range(30))  # in order, once each
    for f, p in got0:
        assert np.allclose(p, nearest_window(lookup, 0, f).probs)


def test_the_annotated_video_draws_a_face_without_a_window_without_bars(annotated):
    assert all(p is None for _, tid, p, *_ in annotated[1] if tid == 1)


def test_the_annotated_video_titles_each_face_by_its_person(annotated):
    assert {(tid, label, colour) for _, tid, _, label, colour in annotated[1]} == {(0, "P1", 0), (1, "P2", 1)}


def test_a_person_keeps_one_colour_across_tracks():
    from dfer.inference.render import person_colours

    res = _prediction()
    res.people = {0: "P1", 1: "P1"}
    assert person_colours(res) == {0: 0, 1: 0}
    res.people = {}
    assert person_colours(res) == {0: 0, 1: 1}


def test_the_title_reads_person_expression_probability(monkeypatch):
    import cv2

    titles = []
    real = cv2.putText
    monkeypatch.setattr(cv2, "putText", lambda img, text, *a: (titles.append(text), real(img, text, *a))[1])
    draw_track(np.zeros((120, 160, 3), np.uint8), 3, (20, 20, 60, 70), np.array([0.18, 0.82]), ["Sad", "Happy"],
               label="P1")
    draw_track(np.zeros((120, 160, 3), np.uint8), 3, (20, 20, 60, 70), np.array([0.18, 0.82]), ["Sad", "Happy"])
    assert titles[0] == "P1 Happy 0.82" and "#3 Happy 0.82" in titles
