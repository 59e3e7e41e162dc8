"""Model cards written with every trained model, and the synthetic-data warning wherever labels show."""

import json

import pytest
import yaml

from dfer.checkpoint import load_checkpoint, save_checkpoint
from dfer.cli import main
from dfer.engine.card import model_card
from dfer.files import file_digest
from dfer.inference import Recognizer
from dfer.preprocess import SYNTHETIC_WARNING
from synthetic import write_face_video


def _front_matter(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_training_writes_a_hub_ready_card_with_the_runs_numbers(toy_run):
    m, out = toy_run
    text = (out / "MODEL_CARD.md").read_text()
    meta = _front_matter(text)
    assert meta["library_name"] == "dfer" and meta["license"] == "other"
    result = meta["model-index"][0]["results"][0]
    test = m.selected.test
    assert result["metrics"][0] == {"type": "accuracy", "name": "WAR", "value": round(100 * test["war"], 2)}
    assert result["metrics"][1]["value"] == round(100 * test["uar"], 2)
    for section in ("## Model and cost", "## Data and protocol", "## Results", "## Intended use and limits"):
        assert section in text
    assert f"({test['num_samples']} clips)" in text and f"{m.cost['run']['gmacs']:.2f} GMACs" in text
    assert file_digest(out / "best.pt") in text
    assert "never used to choose the model" in text and "SYNTHETIC" not in text
    for k, name in enumerate(test["class_names"]):
        assert f"| {name} | {test['support'][k]} |" in text


@pytest.fixture(scope="module")
def synth(toy_run, tmp_path_factory):
    """The toy run's checkpoint marked as trained on synthetic data."""
    ckpt = load_checkpoint(toy_run[1] / "best.pt")
    ckpt.split = {**ckpt.split, "synthetic": True}
    return save_checkpoint(tmp_path_factory.mktemp("synth") / "synth.pt", ckpt)


def test_the_card_command_marks_a_synthetic_checkpoints_card(toy_run, synth, tmp_path):
    card = tmp_path / "card" / "MODEL_CARD.md"
    assert main(["card", str(synth), "--out", str(card), "--metrics", str(toy_run[1] / "metrics.json")]) == 0
    text = card.read_text()
    assert _front_matter(text)["license"] == "mit" and "synthetic-data" in _front_matter(text)["tags"]
    assert SYNTHETIC_WARNING in text


def test_a_synthetic_checkpoint_warns_through_the_python_api(synth):
    rec = Recognizer.from_checkpoint(synth, backend="torch")
    assert rec.model_info["synthetic"] and rec.model_info["warning"] == SYNTHETIC_WARNING


def test_a_synthetic_checkpoint_warns_wherever_predict_reports(synth, tmp_path, capsys):
    video = write_face_video(tmp_path / "v.mp4", n=20)
    assert main(["predict", str(video), "--checkpoint", str(synth), "--backend", "torch", "--out", str(tmp_path / "p"),
                 "--no-video", "--quiet"]) == 0
    assert SYNTHETIC_WARNING in capsys.readouterr().out
    summary = json.loads((tmp_path / "p" / "v" / "summary.json").read_text())
    assert summary["warning"] == SYNTHETIC_WARNING and summary["settings"]["model"]["synthetic"] is True


def test_card_without_metrics_still_tells_what_it_can(toy_run, tmp_path):
    _, out = toy_run
    lone = tmp_path / "lone.pt"
    lone.write_bytes((out / "best.pt").read_bytes())
    text = model_card(lone)
    assert "No test metrics were found" in text and _front_matter(text)["model-index"][0]["results"] == []
    with pytest.raises(Exception, match="not a readable PyTorch checkpoint"):
        (tmp_path / "x.pt").write_bytes(b"nope")
        model_card(tmp_path / "x.pt")
