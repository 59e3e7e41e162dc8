"""Baselines in the registry, and `dfer ablate` on the toy set."""

import json

import pytest
import torch

from conftest import TINY
from dfer.checkpoint import make_checkpoint, model_from_checkpoint
from dfer.cli import main
from dfer.compute_cost import profile_model
from dfer.engine.ablate import parse_variants, sign_test
from dfer.errors import ConfigError
from dfer.models import BASELINES, MODELS, VideoResNetClassifier, build_model
from dfer.preprocess import Preprocess


@pytest.fixture(scope="module", params=BASELINES)
def baseline(request):
    torch.manual_seed(0)
    return request.param, build_model(name=request.param, num_classes=3)


def test_a_baseline_is_the_plain_torchvision_network_with_gradients_everywhere(baseline):
    _, model = baseline
    assert isinstance(model, VideoResNetClassifier) and model.config.attention_stage == "none"
    out = model(torch.randn(2, 3, 4, 32, 32))
    assert out.logits.shape == (2, 3) and out.embedding is None
    out.logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_baseline_loads_kinetics_weights_of_its_architecture_strictly(baseline, tmp_path):
    import torchvision.models.video as tvv

    name, _ = baseline
    ref = getattr(tvv, name)(weights=None).state_dict()
    torch.save(ref, tmp_path / "k400.pt")  # a saved state dict stands in for the download
    loaded = build_model(name=name, num_classes=3, weights=str(tmp_path / "k400.pt"))
    assert torch.equal(loaded.backbone.stem[0].weight, ref["stem.0.weight"])


def test_a_baseline_checkpoint_is_rebuilt_as_the_same_architecture(baseline):
    name, model = baseline
    ckpt = make_checkpoint(model=model, class_names=["a", "b", "c"], preprocess=Preprocess(num_frames=4, size=32))
    assert ckpt.model.name == name
    again, _ = model_from_checkpoint(ckpt)
    assert isinstance(again, VideoResNetClassifier) and again.backbone.arch == name
    assert profile_model(again, (16, 112, 112)).gmacs > 30


def test_variants_always_include_the_full_model():
    assert parse_variants("ce_only,r3d_18") == ["full", "ce_only", "r3d_18"]
    assert parse_variants(None)[0] == "full" and set(MODELS) >= {"r3d_18", "mc3_18"}
    with pytest.raises(ConfigError, match="unknown ablation variant"):
        parse_variants("full,resnet50")


def test_sign_test_p_values():
    assert sign_test([0.1, 0.2, 0.3]) == pytest.approx(0.25)  # 3 of 3 folds better: 2 / 2^3
    assert sign_test([0.1, -0.1]) == 1.0 and sign_test([0.0, 0.0]) == 1.0


def test_cli_ablate_on_the_toy_set(toy_cache, tmp_path, capsys):
    out = tmp_path / "abl"
    args = ["ablate", "--data", str(toy_cache), "--out", str(out), "--variants", "r3d_18", "--folds", "2",
            "--epochs", "1", "--quiet", "--set", *TINY]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "full: WAR" in printed and "r3d_18: WAR" in printed and "vs full, sign test p" in printed
    s = json.loads((out / "metrics.json").read_text())
    assert list(s["variants"]) == ["full", "r3d_18"]
    for name, r in s["variants"].items():
        assert sorted(r["per_fold"]) == ["2"], name
        assert (out / name / "fold_2" / "best.pt").is_file()
    # the toy runs' network is the half-width one (4x fewer MACs); the baseline is torchvision's full-width r3d_18
    assert s["variants"]["full"]["gmacs_16x112x112"] == pytest.approx(10.22, abs=0.01)
    assert s["variants"]["r3d_18"]["gmacs_16x112x112"] > 30
    p = s["paired_vs_full"]["r3d_18"]["war"]
    full, r3d = s["variants"]["full"]["per_fold"], s["variants"]["r3d_18"]["per_fold"]
    assert p["per_fold"]["2"] == pytest.approx(r3d["2"]["war"] - full["2"]["war"])
    report = (out / "report.md").read_text()
    assert "| r3d_18 |" in report and "Paired differences" in report and "sign test" in report
    # identical folds and seeds: the baseline's fold saw exactly the full model's clips
    split = [json.loads((out / v / "fold_2" / "split.json").read_text())["sha256"] for v in ("full", "r3d_18")]
    assert split[0] == split[1]
