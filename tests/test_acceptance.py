"""int8 accepted by the accuracy users see: the rule, its bootstrap intervals, and dfer export using it."""

import json

import numpy as np
import pytest

from dfer.acceptance import accuracy_check, war_uar
from dfer.cli import main
from dfer.inference import export_onnx


def test_war_uar_leave_an_absent_class_out_of_uar():
    labels = np.array([0] * 8 + [1] * 2)
    assert war_uar(labels, labels.copy(), 3) == (1.0, 1.0)


LABELS = np.array([0] * 8 + [1] * 2)
REF = np.eye(3)[LABELS] * 5.0  # float32 right on every clip


def test_one_right_answer_flipped_costs_its_points_past_the_bar():
    near = REF.copy()
    near[0] = [0.0, 5.0, 0.0]  # one clip of class 0 flipped: WAR -10 points, UAR -6.25
    check = accuracy_check(LABELS, REF, near, 3, max_drop=1.0)
    assert check["war_diff_points"] == pytest.approx(-10.0) and check["uar_diff_points"] == pytest.approx(-6.25)
    assert check["top1_agreement"] == pytest.approx(0.9) and not check["accepted"]
    lo, hi = check["war_diff_ci95"]
    assert lo <= -10.0 <= hi <= 0.0  # paired bootstrap: the flip is in every resample that draws it


def test_a_flip_between_two_wrong_answers_costs_agreement_not_accuracy():
    wrong = REF.copy()
    wrong[9] = [0.0, 0.0, 5.0]  # float32 wrong on the last clip (class 1 -> 2)
    flipped = wrong.copy()
    flipped[9] = [5.0, 0.0, 0.0]  # reduced model wrong differently (-> 0)
    same = accuracy_check(LABELS, wrong, flipped, 3)
    assert same["accepted"] and same["war_diff_points"] == 0.0 and same["top1_agreement"] == pytest.approx(0.9)
    assert same["war_diff_ci95"] == [0.0, 0.0]


def test_export_applies_the_accuracy_rule_with_labelled_clips(toy_run, toy_cache, tmp_path, capsys, monkeypatch):
    ckpt = toy_run[1] / "best.pt"
    meta = export_onnx(ckpt, tmp_path / "q.onnx", quantize="int8", calibration=toy_cache, calibration_clips=16,
                       max_drop=100.0)
    a = meta["acceptance"]
    assert a["rule"] == "accuracy" and a["accepted"] and a["clips"] == 32 and len(a["war_diff_ci95"]) == 2
    assert 0.0 <= a["top1_agreement"] <= 1.0 and meta["source_sha256"]
    from dfer.inference import export

    real = export.accuracy_check
    monkeypatch.setattr(export, "accuracy_check", lambda *args, **kw: {**real(*args, **kw), "war": 0.5,
                                                                          "war_diff_points": -12.5, "accepted": False})
    out = tmp_path / "r.onnx"
    assert main(["export", str(ckpt), "--quantize", "int8", "--calibration", str(toy_cache), "--calibration-clips", "16",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not written: its accuracy drops by more than 1 points" in err and "-12.50 points" in err and not out.exists()
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
    assert q["status"] == "accepted" and (run / "best-int8.xml").is_file() and (run / "best-int8.bin").is_file()
    assert q["val"]["rule"] == "accuracy" and q["val"]["clips"] == len(split["val"])
    assert q["test"]["clips"] == len(split["test"]) and "war_diff_ci95" in q["test"]
    assert "## Deployable int8 model" in (run / "report.md").read_text()
    assert "OpenVINO int8 model (`best-int8.xml`)" in (run / "MODEL_CARD.md").read_text()
    rec = Recognizer.from_checkpoint(run / "best.pt")  # auto: the verified int8 model beside it
    assert rec.backend_choice["precision"] == "int8" and "verified int8 model" in rec.backend_choice["why"]
    assert Recognizer.from_checkpoint(run / "best.pt", precision="f32").backend_choice["precision"] != "int8"
    # another checkpoint (other bytes) beside an int8 file of the same stem: not its model, not picked
    other = load_checkpoint(run / "best.pt")
    other["metrics"] = {"changed": True}
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
    assert m.int8 == {"status": "failed", "reason": "RuntimeError: boom"} and (tmp_path / "r2" / "best.pt").is_file()
