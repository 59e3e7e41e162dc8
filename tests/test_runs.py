"""dfer.runs: training stops at the selected checkpoint; finish_fold does the rest from the run folder."""

import json
import shutil

import pytest
import torch

from conftest import TINY
from dfer.checkpoint import load_checkpoint, save_checkpoint
from dfer.engine import load_config
from dfer.engine.results import CVResult, FoldResult
from dfer.engine.trainer import FoldTrainer
from dfer.errors import CheckpointError
from dfer.runs import finish_fold


def test_finishing_a_run_again_gives_the_same_result(toy_run, tmp_path):
    m, out = toy_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    again = finish_fold(run, fabric=None, again=True)
    assert json.dumps(again.to_dict()) == json.dumps(m.to_dict())  # as text: a NaN equals itself there
    assert again.selected.test["confusion"] == m.selected.test["confusion"]


def test_a_finished_fold_is_read_back_not_scored(toy_run, tmp_path, monkeypatch):
    m, out = toy_run
    from dfer import runs

    monkeypatch.setattr(runs, "score_part", lambda *a, **k: pytest.fail("a finished fold was scored again"))
    assert json.dumps(finish_fold(out).to_dict()) == json.dumps(json.loads((out / "metrics.json").read_text()))


def test_training_alone_writes_no_test_scores(toy_cache, tmp_path):
    run = tmp_path / "run"
    progress = FoldTrainer(load_config(overrides=TINY + ["optim.epochs=1"]), toy_cache, 1, run).run()
    assert (run / "best.pt").is_file() and load_checkpoint(run / "last.pt").state["done"]
    assert not (run / "metrics.json").exists() and not (run / "report.md").exists()
    assert progress.best_epoch == 1 and len(progress.history) == 1


def test_an_unfinished_run_is_refused_by_name(toy_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(toy_run[1], run)
    (run / "metrics.json").unlink()
    ckpt = load_checkpoint(run / "last.pt")
    ckpt.state["done"] = False
    save_checkpoint(run / "last.pt", ckpt)
    with pytest.raises(CheckpointError, match=r"run: training has not ended .* dfer train --resume"):
        finish_fold(run)
    with pytest.raises(CheckpointError, match="no last.pt"):
        finish_fold(tmp_path / "empty")


def test_fold_result_round_trips_through_metrics_json(toy_run):
    d = json.loads((toy_run[1] / "metrics.json").read_text())
    r = FoldResult.from_dict(d)
    assert json.dumps(r.to_dict()) == json.dumps(d)  # same keys, same order, same values
    assert r.selected.epoch == d["selected"]["epoch"] and r.last.test == d["last"]["test"]


def test_fold_result_reads_a_file_without_optional_entries():
    r = FoldResult.from_dict({"fold": 2, "selected": {"epoch": 3, "test": {"war": 0.5}}, "last": {"epoch": 4}})
    assert r.fold == "2" and r.selected.test == {"war": 0.5} and r.last.test is None and r.cost is None
    assert "cost" not in r.to_dict() and "distillation" not in r.to_dict()


def test_cv_result_round_trips():
    def summary(war):
        ms = {"mean": war, "std": 0.1, "folds": [war - 0.1, war + 0.1]}
        return {"num_folds": 2, "war": ms, "uar": ms, "macro_f1": ms,
                "per_class_recall": {"mean": [war, war], "std": [0.0, 0.0]}, "pooled": {"war": war, "support": [3, 3]}}

    d = {"class_names": ["a", "b"], "protocol": "p", "dataset": "toy", "folds": ["1", "2"],
         "selected": summary(0.5), "last": summary(0.4),
         "per_fold": [{"fold": "1", "selected_epoch": 2, "selected": {"war": 0.5}, "last": {"war": 0.4}}]}
    r = CVResult.from_dict(d)
    assert r.to_dict() == d and r.per_fold[0].selected_epoch == 2
    assert r.selected.war.mean == 0.5 and r.last.pooled["support"] == [3, 3]  # typed, the file's order kept


def test_checkpoint_model_keeps_the_checkpoint_weights(toy_run):
    from dfer.engine.fabric import make_fabric
    from dfer.engine.trainer import checkpoint_model

    ckpt = load_checkpoint(toy_run[1] / "best.pt")
    cfg = load_config(base=ckpt.train_config)
    model = checkpoint_model(ckpt, cfg, make_fabric(cfg))
    for k, v in ckpt.model.state_dict.items():
        assert torch.equal(model.state_dict()[k].cpu(), v), k
