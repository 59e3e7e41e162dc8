import pytest
import torch
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from dfer.errors import ConfigError, WeightsError
from dfer.models import ATTENTION_STAGES, DferNet, ModelConfig, SpatioTemporalAttention, build_model
from dfer.models.net import build_from_config

SMALL = (2, 3, 4, 32, 32)  # (B, C, T, H, W)
# T=16 keeps T>=2 at layer4 so the temporal (T x T) attention has something to learn.
GRAD = (2, 3, 16, 32, 32)


@pytest.mark.parametrize("stage", ATTENTION_STAGES)
def test_forward_backward_every_stage(stage):
    torch.manual_seed(0)
    model = build_model(num_classes=5, attention_stage=stage)
    if model.attention is not None:
        # gamma = 0 would zero the Q/K/V gradients; open the block to check they flow.
        model.attention.gamma.data.fill_(0.5)
    out = model(torch.randn(*GRAD))
    assert out.logits.shape == (2, 5)
    assert out.embedding.shape == (2, 256)
    assert out.weights.shape == (2, 256)
    assert ((out.weights > 0) & (out.weights < 1)).all()
    loss = out.logits.sum() + out.embedding.sum() + out.weights.sum()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(torch.isfinite(t).all() for t in out)


def test_full_size_forward_shapes():
    model = build_model().eval()
    x = torch.randn(1, 3, 16, 112, 112)
    with torch.no_grad():
        fmap = model.forward_features(x)
        out = model.forward_head(fmap)
    assert fmap.shape == (1, 512, 2, 7, 7)
    assert out.logits.shape == (1, 7)
    assert out.embedding.shape == (1, 256) and out.weights.shape == (1, 256)


def test_attention_block_is_identity_at_init():
    block = SpatioTemporalAttention(64)
    f = torch.randn(2, 64, 3, 4, 5)
    assert torch.equal(block(f), f)
    block.gamma.data.fill_(1.0)
    assert not torch.allclose(block(f), f)


def test_attention_maps_are_softmax_over_the_right_axes():
    torch.manual_seed(0)
    block = SpatioTemporalAttention(16, reduction=8)
    f = torch.randn(1, 16, 3, 2, 2)
    # Changing one time step must not change the spatial output of the other time steps.
    g = f.clone()
    g[:, :, 0] += 1.0
    s_f, s_g = block.spatial(f), block.spatial(g)
    assert torch.allclose(s_f[:, :, 1:], s_g[:, :, 1:])
    # Changing one position must not change the temporal output at other positions.
    g = f.clone()
    g[..., 0, 0] += 1.0
    d_f, d_g = block.temporal(f), block.temporal(g)
    assert torch.allclose(d_f[..., 1, 1], d_g[..., 1, 1])
    assert block.q_s.out_channels == 2 and block.v_s.out_channels == 16


def test_torchvision_state_dict_loads_strict(tmp_path):
    tv = r2plus1d_18(weights=None)
    path = tmp_path / "r2p1d.pt"
    torch.save(tv.state_dict(), path)
    model = build_model(weights=path)
    own = model.backbone.state_dict()
    ref = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    assert set(own) == set(ref)
    assert all(torch.equal(own[k], ref[k]) for k in ref)
    # Strict loading directly into the backbone works too.
    model.backbone.load_state_dict(ref, strict=True)


def test_weights_enum_uses_torchvision_loader(tmp_path, monkeypatch):
    state = r2plus1d_18(weights=None).state_dict()
    monkeypatch.setattr(R2Plus1D_18_Weights, "get_state_dict", lambda self, progress=True: state)
    model = build_model(weights="KINETICS400_V1")
    assert torch.equal(model.backbone.stem[0].weight, state["stem.0.weight"])
    model = build_model(weights=R2Plus1D_18_Weights.KINETICS400_V1)
    assert torch.equal(model.backbone.layer4[1].conv2[0][3].weight, state["layer4.1.conv2.0.3.weight"])


def test_weights_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build_model(weights=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"stem.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(WeightsError, match="do not match"):
        build_model(weights=bad)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        build_model(weights=junk)


def test_model_config_round_trips_into_the_same_network():
    cfg = ModelConfig(num_classes=4, attention_stage="layer3", dropout=0.2)
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    model = build_from_config(again)
    assert isinstance(model, DferNet) and model.classifier.fc.out_features == 4


def test_a_bad_model_config_is_refused_by_name():
    with pytest.raises(ValueError, match="attention_stage"):
        ModelConfig(attention_stage="layer9")
    names = "dfer_r2plus1d_18, dfer_r2plus1d_18_half, r2plus1d_18, r3d_18, mc3_18"
    with pytest.raises(ConfigError, match=f"model must be one of {names}, got 'resnet50'"):
        ModelConfig(name="resnet50")


def test_deterministic_under_seed():
    def run():
        torch.manual_seed(123)
        m = build_model(num_classes=3)
        torch.manual_seed(7)
        return m(torch.randn(*SMALL)).logits

    assert torch.equal(run(), run())


@pytest.mark.parametrize("stage", ATTENTION_STAGES)
def test_small_clip_forward(stage):
    out = build_model(num_classes=7, attention_stage=stage)(torch.randn(*SMALL))
    assert out.logits.shape == (2, 7) and not torch.isnan(out.logits).any()


def test_zero_init_residual_starts_blocks_as_their_shortcut():
    from torchvision.models.video.resnet import BasicBlock

    from dfer.models import ModelConfig, build_from_config

    model = build_from_config(ModelConfig(num_classes=3, zero_init_residual=True)).eval()
    blocks = [m for m in model.backbone.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8 and all(float(b.conv2[1].weight.detach().abs().sum()) == 0 for b in blocks)
    block = model.backbone.layer1[0]  # no downsampling: the block is relu(x) at init
    x = torch.randn(1, 64, 4, 8, 8)
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(x))
    assert ModelConfig.from_dict(model.config.to_dict()).zero_init_residual
