"""dfer.inference.episodes and the confidence rule: 'uncertain' windows and expression episodes."""

import json

import numpy as np
import pytest

from dfer.cli import main
from dfer.inference import Recognizer
from dfer.inference.episodes import EpisodeRule, track_episodes
from dfer.inference.recognizer import WindowPrediction
from synthetic import write_face_video


@pytest.fixture(scope="module")
def unsure(ckpt, tmp_path_factory):
    """`dfer predict --min-confidence 1.0`: no window can reach it."""
    tmp = tmp_path_factory.mktemp("unsure")
    video = write_face_video(tmp / "v.mp4", n=30)
    assert main(["predict", str(video), "--checkpoint", str(ckpt), "--backend", "torch", "--out", str(tmp / "p"),
                 "--no-video", "--quiet", "--min-confidence", "1.0"]) == 0
    return tmp / "p" / "v"


def test_a_window_under_min_confidence_is_uncertain(unsure):
    rows = (unsure / "predictions.csv").read_text().splitlines()[1:]
    assert rows and all(",uncertain," in r for r in rows)


def test_the_summary_counts_the_uncertain_windows(unsure):
    s = json.loads((unsure / "summary.json").read_text())
    rows = (unsure / "predictions.csv").read_text().splitlines()[1:]
    assert s["uncertain_windows"] == len(rows) == sum(t["uncertain_windows"] for t in s["tracks"])
    assert s["settings"]["min_confidence"] == 1.0


def test_uncertain_windows_make_uncertain_episodes(unsure):
    episodes = (unsure / "episodes.csv").read_text().splitlines()
    assert episodes[0] == "track_id,person_id,start_s,end_s,label,mean_probability,windows"
    assert all(",uncertain," in r for r in episodes[1:])


def test_min_confidence_out_of_range_is_refused_when_parsed(ckpt, tmp_path):
    assert main(["predict", str(tmp_path / "v.mp4"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "q"),
                 "--min-confidence", "1.5"]) == 2


def _windows(labels_probs, step=1.0):
    out = []
    for k, probs in enumerate(labels_probs):
        p = np.array(probs, np.float32)
        out.append(WindowPrediction(1, int(k * 25), int(k * 25 + 49), k * step, k * step + 2.0, (0, 0, 1, 1), p,
                                    "ABC"[int(p.argmax())]))
    return out


def test_episode_rule_removes_one_window_flickers_with_hysteresis():
    names = ["A", "B", "C"]
    a, b, near_b = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.42, 0.48, 0.1]
    ws = _windows([a, a, a, b, a, a, near_b, a, b, b, b])
    raw = track_episodes(1, ws, names, EpisodeRule(0, 0))
    assert [(e.label, e.windows) for e in raw] == [("A", 3), ("B", 1), ("A", 2), ("B", 1), ("A", 1), ("B", 3)]
    assert raw[0].start_s == 0.0 and raw[-1].end_s == 12.0  # from the first window's start to the last's end
    assert all(x.end_s == y.start_s for x, y in zip(raw, raw[1:]))  # episodes tile the track
    ruled = track_episodes(1, ws, names, EpisodeRule(min_seconds=1.5, margin=0.1))
    assert [(e.label, e.windows) for e in ruled] == [("A", 8), ("B", 3)]
    assert ruled[1].mean_probability == pytest.approx(0.8)
    assert track_episodes(1, ws[:1], names, EpisodeRule())[0].windows == 1


def test_the_episode_table_is_the_summarys_episodes(ckpt, tmp_path):
    video = write_face_video(tmp_path / "v.mp4", n=60)
    r = Recognizer.from_checkpoint(ckpt, backend="torch").predict_video(video)
    df = r.episodes_dataframe()
    assert list(df.columns) == ["track_id", "person_id", "start_s", "end_s", "label", "mean_probability", "windows"]
    assert df["windows"].sum() == len(r.windows)
    assert r.summary()["episodes"] == df.to_dict("records")
