"""dfer.engine.report: the recall table and a fold's report."""

from dfer.engine.report import recall_table, write_fold_report
from dfer.engine.results import FoldResult


def _report(war, uar, rec):
    return {"war": war, "uar": uar, "per_class_recall": rec, "support": [3, 1], "macro_f1": 0.5,
            "confusion": [[2, 1], [0, 1]]}


def test_recall_table_layout():
    table = recall_table([("model A", _report(0.75, 0.8333, [0.6667, 1.0])), ("skipped", None)], ["Happy", "Sad"])
    lines = table.splitlines()
    assert lines[0] == "| model | Happy (3) | Sad (1) | UAR | WAR |"
    assert lines[2] == "| model A | 66.67 | 100.00 | 83.33 | 75.00 |" and len(lines) == 3
    assert "n/a" in recall_table([("x", _report(0.5, 0.5, [float("nan"), 0.5]))], ["Happy", "Sad"])


def test_a_fold_report_names_the_selected_epoch_beside_the_last(tmp_path):
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
