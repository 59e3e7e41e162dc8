import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY
from dfer.checkpoint import load_checkpoint, model_from_checkpoint
from dfer.cli import main
from dfer.engine import load_config
from dfer.engine.loop import lr_schedule
from dfer.engine.results import CVResult, FoldResult
from dfer.engine.trainer import class_weights
from dfer.errors import CheckpointError, ConfigError
from dfer.runs import train_fold


@pytest.fixture
def toy(toy_cache):
    return toy_cache


def test_config_defaults_are_the_papers():
    cfg = load_config()
    assert cfg.optim.lr == 1e-3 and cfg.data.batch_size == 32 and cfg.loss.lam == 0.01 and cfg.loss.center_lr == 0.5


def test_config_file_then_overrides_win(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  epochs: 3\n  schedule: step\nmodel:\n  attention_stage: layer3\n")
    cfg = load_config(f, ["optim.lr=1e-4", "data.balanced=true", "model.attn_grid=[1,1,1]"])
    assert (cfg.optim.epochs, cfg.optim.schedule, cfg.optim.lr) == (3, "step", 1e-4)
    assert cfg.data.balanced and cfg.model.attention_stage == "layer3" and cfg.model.attn_grid == (1, 1, 1)


def test_a_bad_config_key_or_value_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(overrides=["optim.lrr=1"])
    with pytest.raises(ConfigError, match="data.batch_size"):
        load_config(overrides=["data.batch_size=many"])
    with pytest.raises(ConfigError, match="schedule"):
        load_config(overrides=["optim.schedule=zigzag"])
    with pytest.raises(ConfigError, match="attention_stage"):
        load_config(overrides=["model.attention_stage=layer9"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_lr_schedules_warm_up_then_decay():
    cosine = lr_schedule(1e-3, "cosine", 100, 10, warmup_epochs=1)
    lrs = [cosine(s) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)  # linear warm-up
    assert lrs[10] == pytest.approx(1e-3) and lrs[-1] < 1e-5 and all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    step = lr_schedule(1e-3, "step", 60, 10, step_epochs=2, step_gamma=0.5)
    assert [step(s) for s in (0, 19, 20, 45)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_class_weights_are_inverse_frequency():
    assert class_weights([0, 0, 0, 1, 1, 2], 3).tolist() == pytest.approx([2 / 3, 1.0, 2.0])


def test_an_absent_class_weighs_zero():
    assert class_weights([0, 0, 0, 1], 3).tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_training_learns_the_toy_set(toy_run):
    m, _ = toy_run
    assert m.history[-1]["train_loss"] < 0.5 * m.history[0]["train_loss"]
    # 3 balanced classes: chance is 1/3
    assert m.selected.test["war"] >= 0.7 and m.last.test["war"] >= 0.7, m.selected.test


@pytest.mark.parametrize("name", ["best.pt", "last.pt", "config.yaml", "split.json", "log.csv", "metrics.json",
                                  "report.md", "confusion.png", "confusion_normalized.png", "curves.png"])
def test_a_run_folder_holds_every_file(toy_run, name):
    path = toy_run[1] / name
    assert path.is_file()
    if path.suffix == ".png":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_writes_tensorboard_logs(toy_run):
    assert any((toy_run[1] / "tb").iterdir())


def test_metrics_json_holds_the_test_results_with_the_cost(toy_run):
    m, out = toy_run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["selected"]["test"]["confusion"] == m.selected.test["confusion"]
    assert saved["cost"]["paper_clip"]["gmacs"] == pytest.approx(10.22, abs=0.01) and saved["cost"]["run"]["clip"] == [4, 32, 32]


def test_the_report_has_the_per_class_table(toy_run):
    report = (toy_run[1] / "report.md").read_text()
    assert "| model | right (" in report and "UAR" in report and "selected (epoch" in report


def test_the_log_has_a_line_per_epoch(toy_run):
    assert len((toy_run[1] / "log.csv").read_text().strip().splitlines()) == 9


def test_the_saved_split_keeps_test_clips_apart(toy_run):
    split = json.loads((toy_run[1] / "split.json").read_text())
    assert not set(split["test"]) & set(split["train"] + split["val"])


def test_the_selected_checkpoint_is_self_describing(toy_run):
    ckpt = load_checkpoint(toy_run[1] / "best.pt")
    assert ckpt.class_names == ["right", "left", "still"]
    assert ckpt.preprocess.num_frames == 4 and ckpt.preprocess.size == 32
    assert ckpt.versions["torch"] == str(torch.__version__) and ckpt.state is None
    model, _ = model_from_checkpoint(toy_run[1] / "best.pt")
    assert not model.training


def test_evaluating_the_checkpoint_alone_gives_the_reported_test_metrics(toy, toy_run, tmp_path):
    m, out = toy_run
    rc = main(["evaluate", str(out / "best.pt"), "--data", str(toy), "--workers", "0", "--out", str(tmp_path / "ev")])
    assert rc == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["split_matches_training"] and ev["report"]["war"] == pytest.approx(m.selected.test["war"])
    assert ev["report"]["confusion"] == m.selected.test["confusion"]


def test_a_run_folder_is_never_overwritten(toy, toy_run):
    with pytest.raises(CheckpointError, match="holds a run already"):
        train_fold(load_config(overrides=TINY), toy, 1, toy_run[1])


class _Killed(Exception):
    pass


def test_resume_mid_epoch_matches_uninterrupted(toy, tmp_path):
    cfg = load_config(overrides=TINY + ["optim.epochs=2", "runtime.checkpoint_every=2", "model.dropout=0.3",
                                        "runtime.tensorboard=false"])
    full = train_fold(cfg, toy, 2, tmp_path / "a")

    def kill_at_step_5(event, info):
        if event == "step_end" and info["global_step"] == 5:
            raise _Killed

    cfg_b = load_config(base=cfg.to_dict())
    with pytest.raises(_Killed):
        train_fold(cfg_b, toy, 2, tmp_path / "b", callbacks=[kill_at_step_5])
    state = load_checkpoint(tmp_path / "b" / "last.pt").state
    assert state["global_step"] == 4 and state["epoch"] == 0 and state["next_batch"] == 4  # killed mid-epoch 1
    resumed = train_fold(load_config(base=cfg.to_dict()), toy, 2, tmp_path / "b", resume=True)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for k, v in a.model.state_dict.items():
        assert torch.equal(v, b.model.state_dict[k]), k
    assert torch.equal(a.state["centers"], b.state["centers"])
    for key in ("selected", "last"):
        assert getattr(full, key).test["confusion"] == getattr(resumed, key).test["confusion"]
        assert getattr(full, key).epoch == getattr(resumed, key).epoch
    strip = [{k: v for k, v in h.items() if "per_s" not in k} for h in full.history]
    assert strip == [{k: v for k, v in h.items() if "per_s" not in k} for h in resumed.history]


@pytest.mark.slow
def test_two_process_cpu_ddp(toy, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "dfer.cli", "train", "--data", str(toy), "--fold", "1", "--out", str(out),
                        "--devices", "2", "--accelerator", "cpu", "--epochs", "1", "--quiet",
                        "--set", *TINY, "runtime.threads=1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = FoldResult.load(out)
    assert m.world_size == 2
    # each of the 2 processes saw half of the epoch (full batches of 4), not all of it
    per_rank = int(np.ceil(m.split["sizes"]["train"] / 2))
    assert load_checkpoint(out / "last.pt").state["global_step"] == per_rank // 4
    assert m.selected.test["num_samples"] == m.split["sizes"]["test"]


def test_cv_end_to_end_with_cli(toy, tmp_path, capsys):
    out = tmp_path / "cv"
    rc = main(["cv", "--data", str(toy), "--out", str(out), "--epochs", "1", "--quiet", "--set", *TINY,
               "runtime.tensorboard=false"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "3-fold CV" in printed and "report:" in printed
    cv = CVResult.load(out)
    assert cv.folds == ["1", "2", "3"] and len(cv.selected.war.folds) == 3
    assert sum(cv.selected.pooled["support"]) == 48  # every clip tested exactly once
    assert (out / "confusion.png").is_file() and "mean over folds" in (out / "report.md").read_text()
    assert all((out / f"fold_{k}" / "report.md").is_file() for k in "123")
    # a rerun with --resume finds every fold finished and only re-aggregates
    rc = main(["cv", "--data", str(toy), "--out", str(out), "--epochs", "1", "--quiet", "--resume", "--set", *TINY])
    assert rc == 0 and "already finished" in capsys.readouterr().out


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_foreign_or_unreadable_checkpoint_is_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a dfer checkpoint"):
        load_checkpoint(plain)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "dfer-checkpoint", "x": _Payload()}, evil, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    rc = main(["evaluate", str(evil), "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "refused" in err and "Traceback" not in err
