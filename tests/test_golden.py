"""Golden outputs: seeded computations compared with values stored in tests/golden/.

A change that moves any of these numbers changes what every checkpoint computes; if it is
intended, regenerate the files with `DFER_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py`
and say why in the commit.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dfer.data.transforms import EvalTransform
from dfer.models import SpatioTemporalAttention, build_model

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("DFER_REGENERATE_GOLDEN") == "1"


def check(name: str, values: dict[str, np.ndarray], atol: float = 1e-4) -> None:
    path = GOLDEN / f"{name}.json"
    got = {k: np.asarray(v, dtype=np.float64).round(6).tolist() for k, v in values.items()}
    if REGENERATE:
        path.write_text(json.dumps(got, indent=1) + "\n")
    stored = json.loads(path.read_text())
    assert sorted(stored) == sorted(got)
    for k in got:
        np.testing.assert_allclose(got[k], stored[k], atol=atol, rtol=1e-4, err_msg=f"{name}: {k}")


def test_network_forward_is_golden():
    torch.manual_seed(0)
    model = build_model(num_classes=3).eval()
    model.attention.gamma.data.fill_(0.5)  # open the attention block so it takes part
    torch.manual_seed(1)
    x = torch.randn(1, 3, 8, 32, 32)  # (B, C, T, H, W)
    with torch.no_grad():
        out = model(x)
    check("network_forward", {"logits": out.logits[0], "embedding_head": out.embedding[0, :8],
                              "weights_head": out.weights[0, :8], "embedding_sum": out.embedding.sum()})


def test_attention_block_is_golden():
    torch.manual_seed(2)
    block = SpatioTemporalAttention(16, reduction=8)
    block.gamma.data.fill_(0.7)
    f = torch.randn(1, 16, 3, 2, 2)  # (B, C, T, H, W)
    with torch.no_grad():
        p = block(f)
        s, d = block.spatial(f), block.temporal(f)
    check("attention", {"out": p[0, :2].flatten(), "spatial": s[0, 0].flatten(), "temporal": d[0, 0].flatten()})


def test_eval_transform_is_golden():
    ramp = np.arange(2 * 12 * 12 * 3, dtype=np.int64).reshape(2, 12, 12, 3)
    frames = ((ramp * 37) % 256).astype(np.uint8)  # (T, H, W, 3): a fixed, non-smooth pattern
    x = EvalTransform()(frames)  # (3, T, 112, 112), resized and normalised
    assert x.shape == (3, 2, 112, 112) and x.dtype == torch.float32
    check("eval_transform", {"corner": x[:, :, :3, :3].flatten(), "mean_per_channel": x.mean((1, 2, 3)),
                             "std_per_channel": x.std((1, 2, 3))}, atol=1e-5)


@pytest.mark.skipif(REGENERATE, reason="regenerating")
def test_golden_files_exist():
    assert {p.stem for p in GOLDEN.glob("*.json")} >= {"network_forward", "attention", "eval_transform"}
