"""Windows scored in flight (OpenVINO streams) are the windows scored one at a time."""

import threading
import time

import numpy as np
import pytest

from dfer.data import read_video, write_video
from dfer.data.video import open_source
from dfer.inference import InferenceSettings, Recognizer
from dfer.inference.render import write_annotated
from dfer.inference.scoring import ScoringQueue
from dfer.preprocess import Preprocess
from synthetic import face_frames


def _scorer(running, peak, lock):
    def fn(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03 if int(x[0]) % 2 == 0 else 0.001)  # even calls finish after the odd ones after them
        with lock:
            running[0] -= 1
        if int(x[0]) == 7:
            raise ValueError("call 7 failed")
        return x * 10

    return fn


def test_queue_returns_results_in_submission_order_within_its_depth():
    running, peak = [0], [0]
    q = ScoringQueue(_scorer(running, peak, threading.Lock()), depth=3)
    got = []
    for k in range(7):
        q.submit(np.array([k]), f"tag{k}")
        got += q.ready()
    got += q.drain()
    assert [t for _, t in got] == [f"tag{k}" for k in range(7)] and [int(r[0]) for r, _ in got] == list(range(0, 70, 10))
    assert peak[0] <= 3 and q.in_flight == 0
    q.close()


def test_a_failed_call_raises_where_its_results_are_collected():
    q = ScoringQueue(_scorer([0], [0], threading.Lock()), depth=3)
    q.submit(np.array([7]), "bad")
    with pytest.raises(ValueError, match="call 7"):
        q.drain()
    q.close()


def test_a_queue_of_depth_one_scores_on_the_callers_thread():
    sync = ScoringQueue(_scorer([0], [0], threading.Lock()), depth=1)
    sync.submit(np.array([1]), "t")
    assert [t for _, t in sync.ready()] == ["t"]  # ready at once
    with pytest.raises(ValueError, match="call 7"):
        sync.submit(np.array([7]), "bad")  # raised where it was submitted


class MeanBackend:
    """Logits from the clip's channel means (deterministic), a pause per call; `concurrency` calls at once."""

    name = detail = "mean"

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.threads: set[str] = set()

    def __call__(self, clips):
        time.sleep(0.02)
        self.threads.add(threading.current_thread().name)
        return clips.mean(axis=(2, 3, 4)).astype(np.float32) * 50  # (B, 3)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The same video scored one window at a time (depth 1) and two in flight (depth 2)."""
    tmp = tmp_path_factory.mktemp("scored")
    # a face for 30 frames, none for 12, a face again: two tracks, the first ends mid-video
    frames = face_frames(30, (160, 120)) + face_frames(12, (160, 120), face=False) + face_frames(24, (160, 120), seed=1)
    video = write_video(tmp / "v.mp4", frames, fps=25)
    settings = InferenceSettings(stride=6, window_seconds=0.6, min_track_frames=4, face={"detect_every": 2})
    pre = Preprocess(num_frames=8, size=32)
    runs = {}
    for depth in (1, 2):
        backend = MeanBackend(depth)
        rec = Recognizer(backend, ["a", "b", "c"], pre, settings)
        src = open_source(video)
        builder = rec.result_builder(src, InferenceSettings(people=False))
        events = []
        for ev in rec.iter_source(src):
            builder.add(ev)
            events.append((ev.index, set(ev.boxes), [(w.track_id, w.end_frame) for w in ev.new_windows], ev.frame is None))
        write_annotated(builder.finish(), src.frames(), tmp / f"a{depth}.mp4")
        windows = [w for *_, ws, _ in events for w in ws]
        runs[depth] = (backend, events, windows, tmp / f"a{depth}.mp4")
    return runs


def test_windows_scored_in_flight_equal_windows_scored_one_at_a_time(scored):
    w1, w2 = scored[1][2], scored[2][2]
    assert sorted(w1) == sorted(w2) and {t for t, _ in w1} == {0, 1}


def test_one_at_a_time_each_window_comes_with_the_frame_that_completed_it(scored):
    e1 = scored[1][1]
    assert all(i - 1 <= end <= i for i, _, ws, last in e1 if not last for _, end in ws)  # a flushed track's: +1


def test_only_in_flight_scoring_uses_scoring_threads(scored):
    b1, b2 = scored[1][0], scored[2][0]
    assert all(n.startswith("dfer-score") for n in b2.threads) and not any(n.startswith("dfer-score") for n in b1.threads)


def test_an_ended_track_has_all_its_windows_out_by_the_first_event_without_it(scored):
    e2, w1 = scored[2][1], scored[1][2]
    gone = next(k for k, (_, boxes, _, last) in enumerate(e2) if k and 0 in e2[k - 1][1] and 0 not in boxes)
    delivered = [w for _, _, ws, _ in e2[: gone + 1] for w in ws if w[0] == 0]
    assert delivered == [w for w in w1 if w[0] == 0]


def test_in_flight_scoring_draws_the_same_annotated_video(scored):
    a, b = read_video(scored[1][3])[0], read_video(scored[2][3])[0]
    assert a.shape == b.shape == (66, 120, 160, 3) and np.array_equal(a, b)
