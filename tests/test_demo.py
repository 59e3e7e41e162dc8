import csv
import json

import numpy as np
import pytest

from dfer.cli import main
from dfer.data import FaceSettings, make_detector, probe, read_video
from dfer.demo import run_demo
from dfer.demo_settings import DemoSettings
from dfer.synth.dataset import CLASSES, SynthSettings, generate, render_clip
from dfer.synth.face import Identity


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synth")
    s = SynthSettings(clips_per_class=2, frames=10, seed=3)
    manifest = generate(tmp / "a", s, progress=False)
    return tmp, s, list(csv.DictReader(open(manifest)))


def test_the_generator_writes_the_documented_layout(generated):
    tmp, _, rows = generated
    assert [r["label"] for r in rows[:7]] == CLASSES and len(rows) == 14
    assert {r["subject"] for r in rows} == {"s000", "s001"}
    assert "SYNTHETIC" in (tmp / "a" / "SYNTHETIC.txt").read_text()
    for r in rows:
        path = tmp / "a" / r["path"]
        assert path.parent.name == r["label"] and path.suffix == ".mp4"
        info = probe(path)
        assert info.num_frames == 10 and info.fps == 25 and (info.width, info.height) == (160, 128)


def test_the_same_seed_gives_the_same_videos(generated):
    tmp, s, rows = generated
    generate(tmp / "b", s, progress=False)
    fa, _ = read_video(tmp / "a" / rows[0]["path"])
    fb, _ = read_video(tmp / "b" / rows[0]["path"])
    assert np.array_equal(fa, fb)


def test_another_seed_gives_other_videos(generated):
    tmp, _, rows = generated
    other = generate(tmp / "c", SynthSettings(clips_per_class=2, frames=10, seed=4), progress=False)
    fa, _ = read_video(tmp / "a" / rows[0]["path"])
    fc, _ = read_video(other.parent / rows[0]["path"])
    assert not np.array_equal(fa, fc)


def test_fear_is_surprise_played_backwards():
    s = SynthSettings(frames=12)
    ident = Identity.random(np.random.default_rng(0))
    sur = render_clip("Surprise", ident, np.random.default_rng(5), s)
    fear = render_clip("Fear", ident, np.random.default_rng(5), s)
    assert all(np.array_equal(x, y) for x, y in zip(fear, sur[::-1]))  # the same frames, in the other order
    assert not np.array_equal(sur[0], sur[-1])  # and the expression does change over the clip


def test_synthetic_faces_are_found_by_dlib(tmp_path):
    det = make_detector(FaceSettings())
    s = SynthSettings(frames=6)
    found = 0
    for k, cls in enumerate(CLASSES):
        frames = render_clip(cls, Identity.random(np.random.default_rng(k)), np.random.default_rng(100 + k), s)
        found += sum(len(det(f)) > 0 for f in frames)
    assert found >= 0.7 * 6 * len(CLASSES)


def test_cli_synth(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--clips-per-class", "1", "--frames", "8", "--quiet"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert len(list((tmp_path / "s").glob("*/*.mp4"))) == 7


def test_tiny_demo_end_to_end(tmp_path):
    s = DemoSettings(clips_per_class=4, frames=16, folds=2, epochs=1, clip_frames=4, clip_size=32, crop_size=40,
                     batch_size=4, workers=1)
    lines = []
    r = run_demo(tmp_path / "demo", s, progress=False, log=lines.append)
    out = tmp_path / "demo"
    assert lines[0].startswith("SYNTHETIC DATA")
    report = (out / "demo_report.md").read_text()
    assert "SYNTHETIC DATA" in report and "Temporal ablation" in report and "shuffled" in report
    saved = json.loads((out / "demo.json").read_text())
    assert saved["cv"]["folds"] == ["1", "2"]
    # the shuffled-frames figure is the pooled confusion of the folds' own evaluations, not a made-up number
    shuffled = sum(np.asarray(json.loads((out / "cv" / f"fold_{k}" / "eval_test_shuffled" / "metrics.json").read_text())
                              ["report"]["confusion"]) for k in ("1", "2"))
    ab = saved["ablation"]
    assert ab["shuffled"]["war"] == pytest.approx(np.trace(shuffled) / shuffled.sum())
    assert ab["natural"]["war"] == pytest.approx(saved["cv"]["selected"]["pooled"]["war"])
    assert ab["war_drop"] == pytest.approx(ab["natural"]["war"] - ab["shuffled"]["war"])
    assert set(saved["ablation"]["natural"]["per_class_recall"]) == set(CLASSES)
    assert (out / "cv" / "report.md").is_file() and (out / "cv" / "fold_1" / "eval_test_shuffled" / "metrics.json").is_file()
    pred = out / "predict" / r["predict"]["outputs"][0].split("/")[-1]
    assert (pred / "annotated.mp4").is_file() and (pred / "timeline.png").is_file()
    assert any(line.startswith("report:") for line in lines)
    assert lines[-1].startswith("serve it:     dfer serve --checkpoint ") and "best.pt" in lines[-1]
    # the model to use is the fold with the best validation WAR, linked as OUT/best.pt; the test never decides
    vals = {}
    for k in ("1", "2"):
        val = json.loads((out / "cv" / f"fold_{k}" / "metrics.json").read_text())["selected"]["val"] or {}
        vals[k] = val.get("val_war", val.get("war"))
    best = max(vals, key=lambda k: (vals[k], -int(k)))
    assert (out / "best.pt").resolve() == (out / "cv" / f"fold_{best}" / "best.pt").resolve()
    assert saved["model"]["fold"] == best
    # a rerun resumes every stage instead of starting over: nothing made before is made again
    made = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".mp4", ".npy", ".pt")}
    again = run_demo(tmp_path / "demo", s, progress=False, log=lambda _: None)
    assert again["cv"]["selected"] == r["cv"]["selected"]
    assert {p: p.stat().st_mtime_ns for p in made} == made
