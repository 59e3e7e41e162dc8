"""int8 accepted by the accuracy users see: the paired rule, its three verdicts, and dfer export using it."""

import json

import numpy as np
import pytest

from dfer.acceptance import Int8Outcome, Int8Status, accuracy_check, clips_to_resolve, paired_drop_bounds, war_uar
from dfer.cli import main
from dfer.inference import export_onnx


def test_war_uar_leave_an_absent_class_out_of_uar():
    labels = np.array([0] * 8 + [1] * 2)
    assert war_uar(labels, labels.copy(), 3) == (1.0, 1.0)


LABELS = np.array([0] * 8 + [1] * 2)
REF = np.eye(3)[LABELS] * 5.0  # float32 right on every clip


def _right(n: int, losses: int, gains: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip correctness of float32 and of the reduced model: `losses` clips only float32 gets right, `gains`
    only the reduced model, the rest alike."""
    a, b = np.zeros(n, bool), np.zeros(n, bool)
    a[:losses] = True
    b[losses : losses + gains] = True
    return a, b


def test_no_disagreement_on_few_clips_does_not_show_a_small_drop():
    lo, hi = paired_drop_bounds(*_right(47, 0, 0))
    assert lo < 0 < 1.0 < hi < 8.0  # 47 clips alike: a model up to 7.6 points worse gives that often enough
    assert clips_to_resolve(1.0) == 381 and paired_drop_bounds(*_right(400, 0, 0))[1] < 1.0


def test_the_clips_that_disagree_carry_the_difference():
    lo, hi = paired_drop_bounds(*_right(200, 20, 2))  # 18 more losses than gains in 200 clips: 9 points
    assert 1.0 < lo < 9.0 < hi
    lo, hi = paired_drop_bounds(*_right(1000, 5, 6))  # as many gains as losses, many clips: within a point
    assert -1.5 < lo < 0 < hi < 1.0


def test_one_right_answer_flipped_in_ten_clips_cannot_be_resolved():
    near = REF.copy()
    near[0] = [0.0, 5.0, 0.0]  # one clip of class 0 flipped: WAR -10 points, UAR -6.25
    check = accuracy_check(LABELS, REF, near, 3, max_drop=1.0)
    assert check["war_diff_points"] == pytest.approx(-10.0) and check["uar_diff_points"] == pytest.approx(-6.25)
    assert check["top1_agreement"] == pytest.approx(0.9) and not check["accepted"]
    assert check["verdict"] == "unresolved" and "10 labelled clips cannot resolve the 1-point bar" in check["reason"]
    lo, hi = check["war_diff_ci95"]
    assert lo <= -10.0 <= hi <= 0.0  # paired bootstrap: the flip is in every resample that draws it


def test_a_model_clearly_worse_is_refused_and_one_alike_on_many_clips_accepted():
    labels = np.arange(1000) % 3
    ref = np.eye(3)[labels] * 5.0
    worse = ref.copy()
    worse[:100] = np.eye(3)[(labels[:100] + 1) % 3] * 5.0  # 100 of 1000 flipped: 10 points worse
    assert accuracy_check(labels, ref, worse, 3)["verdict"] == "refused"
    alike = accuracy_check(labels, ref, ref.copy(), 3)
    assert alike["verdict"] == "accepted" and alike["accepted"] and alike["war_drop_bounds"][1] < 1.0


def test_a_flip_between_two_wrong_answers_costs_agreement_not_accuracy():
    wrong = REF.copy()
    wrong[9] = [0.0, 0.0, 5.0]  # float32 wrong on the last clip (class 1 -> 2)
    flipped = wrong.copy()
    flipped[9] = [5.0, 0.0, 0.0]  # reduced model wrong differently (-> 0)
    same = accuracy_check(LABELS, wrong, flipped, 3, max_drop=100.0)
    assert same["accepted"] and same["war_diff_points"] == 0.0 and same["top1_agreement"] == pytest.approx(0.9)
    assert same["war_diff_ci95"] == [0.0, 0.0]


def test_an_int8_outcome_is_written_the_way_metrics_json_reads_it():
    for o in (Int8Outcome(Int8Status.ACCEPTED, "best-int8.xml", "NNCF", {"rule": "accuracy"}, None),
              Int8Outcome(Int8Status.UNRESOLVED, "best-int8.xml", "NNCF", {}, {}, "too few clips"),
              Int8Outcome(Int8Status.FAILED, reason="RuntimeError: boom")):
        assert Int8Outcome.from_dict(json.loads(json.dumps(o.to_dict()))) == o
    assert Int8Outcome(Int8Status.FAILED, reason="x").to_dict() == {"status": "failed", "reason": "x"}


def test_export_applies_the_accuracy_rule_with_labelled_clips(toy_run, toy_cache, tmp_path, capsys, monkeypatch):
    ckpt = toy_run[1] / "best.pt"
    meta = export_onnx(ckpt, tmp_path / "q.onnx", quantize="int8", calibration=toy_cache, calibration_clips=16,
                       max_drop=100.0)
    a = meta.acceptance
    assert a["rule"] == "accuracy" and a["accepted"] and a["clips"] == 32 and len(a["war_diff_ci95"]) == 2
    assert 0.0 <= a["top1_agreement"] <= 1.0 and meta.source_sha256
    # at the 1-point bar, 32 clips cannot tell: the model is written, not verified, and the command says so
    unresolved = tmp_path / "u.onnx"
    assert main(["export", str(ckpt), "--quantize", "int8", "--calibration", str(toy_cache), "--calibration-clips", "16",
                 "--out", str(unresolved)]) == 0
    said = capsys.readouterr().out
    assert unresolved.is_file() and "NOT verified" in said and "32 labelled clips cannot resolve the 1-point bar" in said
    from dfer.inference import export

    real = export.accuracy_check
    monkeypatch.setattr(export, "accuracy_check", lambda *args, **kw: {
        **real(*args, **kw), "war": 0.5, "war_diff_points": -12.5, "accepted": False, "verdict": "refused",
        "reason": "worse by more than 1 points: WAR drop 8.0 to 17.0"})
    out = tmp_path / "r.onnx"
    assert main(["export", str(ckpt), "--quantize", "int8", "--calibration", str(toy_cache), "--calibration-clips", "16",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not written: it is worse by more than 1 points" in err and "-12.50 points" in err and not out.exists()
    from dfer.errors import Int8Refused  # what callers (the trainer's int8 step) catch: a type, not a message

    with pytest.raises(Int8Refused, match="not written"):
        export_onnx(ckpt, out, quantize="int8", calibration=toy_cache, calibration_clips=16)
    # without labelled clips (synthetic calibration faces) the agreement rule applies, and it is said
    monkeypatch.setattr(export, "accuracy_check", real)
    assert main(["export", str(ckpt), "--quantize", "int8", "--calibration-clips", "8", "--min-agreement", "0",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "accepted by the agreement rule (no labelled clips" in said


@pytest.mark.slow
def test_training_exports_a_verified_int8_model_that_auto_picks(toy_cache, tmp_path, monkeypatch):
    from conftest import TINY
    from dfer.checkpoint import load_checkpoint, save_checkpoint
    from dfer.engine import load_config
    from dfer.errors import ConfigError
    from dfer.inference import Recognizer
    from dfer.runs import train_fold

    run = tmp_path / "run"
    cfg = load_config(overrides=TINY + ["optim.epochs=3", "deploy.int8=true", "deploy.int8_max_drop=100",
                                        "deploy.calibration_clips=8"])
    m = train_fold(cfg, toy_cache, 1, run)
    q = m.int8
    split = json.loads((run / "split.json").read_text())
    assert q.status is Int8Status.ACCEPTED and (run / "best-int8.xml").is_file() and (run / "best-int8.bin").is_file()
    assert q.val["rule"] == "accuracy" and q.val["clips"] == len(split["val"])
    assert q.test["clips"] == len(split["test"]) and "war_diff_ci95" in q.test
    assert "## Deployable int8 model" in (run / "report.md").read_text()
    assert "OpenVINO int8 model (`best-int8.xml`)" in (run / "MODEL_CARD.md").read_text()
    rec = Recognizer.from_checkpoint(run / "best.pt")  # auto: the verified int8 model beside it
    assert rec.backend_choice["precision"] == "int8" and "verified int8 model" in rec.backend_choice["why"]
    assert Recognizer.from_checkpoint(run / "best.pt", precision="f32").backend_choice["precision"] != "int8"
    # another checkpoint (other bytes) beside an int8 file of the same stem: not its model, not picked
    other = load_checkpoint(run / "best.pt")
    other.metrics = {"changed": True}
    save_checkpoint(tmp_path / "other.pt", other)
    (tmp_path / "other-int8.xml").write_bytes((run / "best-int8.xml").read_bytes())
    (tmp_path / "other-int8.bin").write_bytes((run / "best-int8.bin").read_bytes())
    rec = Recognizer.from_checkpoint(tmp_path / "other.pt")
    assert rec.backend_choice["precision"] != "int8"
    assert any(s.startswith("int8: no verified int8 model") for s in rec.backend_choice["skipped"])
    with pytest.raises(ConfigError, match="--precision int8 asked for, but no verified int8 model"):
        Recognizer.from_checkpoint(tmp_path / "other.pt", precision="int8")
    # a quantiser that breaks is reported, and the trained model is kept
    from dfer.inference import export

    monkeypatch.setattr(export, "export_model", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    m = train_fold(load_config(overrides=TINY + ["optim.epochs=1", "deploy.int8=true"]), toy_cache, 1, tmp_path / "r2")
    assert m.int8 == Int8Outcome(Int8Status.FAILED, reason="RuntimeError: boom") and (tmp_path / "r2" / "best.pt").is_file()
