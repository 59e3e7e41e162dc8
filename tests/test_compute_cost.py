import json

from dfer.cli import main
from dfer.compute_cost import count_macs, profile_model
from dfer.models import build_model


def test_profile_counts_match_hand_count_for_a_conv():
    import torch

    conv = torch.nn.Sequential(torch.nn.Conv3d(3, 8, kernel_size=3, padding=1, bias=False))
    gmacs, _ = count_macs(conv, (4, 8, 8))
    assert abs(gmacs * 1e9 - 8 * 3 * 27 * 4 * 8 * 8) < 1


def test_profile_breakdown_adds_up():
    p = profile_model(build_model(), (4, 32, 32))
    parts = sum(v["gmacs"] for v in p.breakdown.values())
    assert abs(parts - p.gmacs) < 1e-9
    assert p.breakdown["backbone"]["gmacs"] > 0 and p.breakdown["attention"]["gmacs"] > 0
    assert sum(v["params"] for v in p.breakdown.values()) == p.params


def test_profile_cli_json(capsys):
    assert main(["profile", "--json", "--clip", "4x32x32", "--no-reference"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"gmacs", "params", "counter"} <= set(out)
    assert out["clip"] == [4, 32, 32]
