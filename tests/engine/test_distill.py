"""dfer distill: students in the registry, the loss, a tiny real distillation, bad input, resume."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY
from dfer.checkpoint import load_checkpoint, save_checkpoint
from dfer.cli import main
from dfer.compute_cost import profile_model, student_costs
from dfer.engine import load_config
from dfer.engine.distill import DistillLoss, DistillNet
from dfer.losses import DferLoss
from dfer.models import build_model
from dfer.models.registry import STUDENTS
from dfer.models.students import student_clip
from dfer.runs import distill_fold


class _Killed(Exception):
    pass


def test_the_narrow_network_has_half_the_channels_in_every_stage():
    narrow = build_model(name="dfer_r2plus1d_18_half").eval()
    for stage, channels in (("layer1", 32), ("layer2", 64), ("layer3", 128), ("layer4", 256)):
        assert getattr(narrow.backbone, stage)[-1].conv2[1].num_features == channels
    out = narrow(torch.zeros(2, 3, 4, 32, 32))
    assert out.logits.shape == (2, 7) and out.embedding.shape == (2, 256) and out.weights.shape == (2, 256)


def test_the_narrow_network_costs_about_4x_fewer_macs():
    full = build_model(name="dfer_r2plus1d_18").eval()
    narrow = build_model(name="dfer_r2plus1d_18_half").eval()
    ratio = profile_model(full, (16, 112, 112)).gmacs / profile_model(narrow, (16, 112, 112)).gmacs
    assert 3.9 < ratio < 4.0  # the stem's first convolution reads 3 colour channels: it shrinks 2x, not 4x


def test_students_span_2x_to_8x_fewer_macs_at_the_papers_clip():
    rows = {r["student"]: r for r in student_costs((16, 112, 112))}
    assert set(rows) == {"(teacher)", *STUDENTS}
    assert rows["frames-half"]["clip"] == [8, 112, 112] and rows["low-res"]["clip"] == [16, 80, 80]
    assert rows["narrow"]["clip"] == [16, 112, 112] and rows["narrow"]["fewer_macs"] > 3.9
    assert abs(rows["frames-half"]["fewer_macs"] - 2.0) < 0.05
    assert 7.5 < rows["narrow-frames-half"]["fewer_macs"] < 8.5


def test_student_clip_rules():
    assert student_clip("narrow-low-res", 16, 112) == student_clip("narrow-low-res", 16, 112)
    assert (student_clip("low-res", 16, 112).num_frames, student_clip("low-res", 16, 112).size) == (16, 80)
    assert student_clip("frames-half", 8, 32).num_frames == 4
    with pytest.raises(Exception, match="unknown student 'tiny'"):
        student_clip("tiny", 16, 112)


def test_the_loss_is_ce_plus_kl_to_the_softened_teacher():
    torch.manual_seed(0)
    student = build_model(name="dfer_r2plus1d_18_half", num_classes=3)
    teacher = build_model(name="dfer_r2plus1d_18", num_classes=3)
    net = DistillNet(student, teacher, frames=2, size=16)
    x = torch.randn(4, 3, 4, 32, 32)
    assert net.student_view(x).shape == (4, 3, 2, 16, 16)
    out = net(x)
    assert net.teacher_logits.shape == (4, 3) and not net.teacher_logits.requires_grad
    y = torch.tensor([0, 1, 2, 0])
    base = DferLoss(3, 256, lam=0.0)
    total, ce, _ = DistillLoss(base, net, alpha=0.5, temperature=2.0)(out.logits, None, None, y)
    p_t = torch.softmax(net.teacher_logits / 2, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(out.logits / 2, 1))).sum(1).mean() * 4
    expected = 0.5 * torch.nn.functional.cross_entropy(out.logits, y) + 0.5 * kl
    assert torch.allclose(total, expected, atol=1e-5) and torch.allclose(ce, torch.nn.functional.cross_entropy(out.logits, y))
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())  # the teacher never learns
    assert any(p.grad is not None for p in student.parameters())
    only_labels, _, _ = DistillLoss(base, net, alpha=0.0, temperature=2.0)(out.logits.detach(), None, None, y)
    assert torch.allclose(only_labels, torch.nn.functional.cross_entropy(out.logits.detach(), y))


@pytest.fixture(scope="module")
def teacher(toy_run):
    """The toy run's selected checkpoint: trained on fold 1 of the toy cache."""
    return toy_run[1] / "best.pt"


def test_a_student_at_a_smaller_clip_trains_on_the_teachers_clips(toy_cache, teacher, tmp_path):
    cfg = load_config(overrides=TINY + ["optim.epochs=1", "distill.student=frames-half", "runtime.tensorboard=false"])
    m = distill_fold(cfg, toy_cache, 1, tmp_path / "s", teacher=teacher)
    pre = load_checkpoint(tmp_path / "s" / "best.pt").preprocess
    assert (pre.num_frames, pre.size) == (2, 32)  # the student's own clip, for inference
    assert m.distillation["teacher_clip"] == [4, 32]


def _writes_what_training_writes(out, m, teacher) -> None:
    for name in ("best.pt", "last.pt", "metrics.json", "report.md", "MODEL_CARD.md", "log.csv", "split.json"):
        assert (out / name).is_file(), name
    d = m.distillation
    assert d["teacher_sha256"] and d["student"] == "narrow" and d["student_clip"] == [4, 32]
    assert m.selected.test["war"] is not None and m.calibration is not None
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt.model.name == "dfer_r2plus1d_18_half" and ckpt.train_config["distill"]["teacher"] == str(teacher)
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Distillation" in card and d["teacher_sha256"] in card
    assert json.loads((out / "metrics.json").read_text())["distillation"]["teacher"] == "best.pt"


@pytest.fixture(scope="module")
def distilled(toy_cache, teacher, tmp_path_factory):
    """A 2-epoch distillation of the toy run into the narrow student, uninterrupted."""
    cfg = load_config(overrides=TINY + ["optim.epochs=2", "runtime.checkpoint_every=2", "runtime.tensorboard=false",
                                        "distill.student=narrow"])
    out = tmp_path_factory.mktemp("distilled") / "a"
    return cfg, out, distill_fold(cfg, toy_cache, 1, out, teacher=teacher)


def test_a_distillation_writes_what_training_writes(distilled, teacher):
    _, out, full = distilled
    _writes_what_training_writes(out, full, teacher)


def test_a_killed_distillation_resumes_to_the_same_weights(distilled, toy_cache, teacher, tmp_path):
    cfg, out, full = distilled

    def kill_at_step_5(event, info):
        if event == "step_end" and info["global_step"] == 5:
            raise _Killed

    with pytest.raises(_Killed):
        distill_fold(load_config(base=cfg.to_dict()), toy_cache, 1, tmp_path / "b", teacher=teacher,
                     callbacks=[kill_at_step_5])
    resumed = distill_fold(load_config(base=cfg.to_dict()), toy_cache, 1, tmp_path / "b", teacher=teacher, resume=True)
    a, b = load_checkpoint(out / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for k, v in a.model.state_dict.items():
        assert torch.equal(v, b.model.state_dict[k]), k
    assert full.selected.test["confusion"] == resumed.selected.test["confusion"]


def _refused(capsys, argv) -> str:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.strip().splitlines()[0].startswith("dfer distill: error: "), err
    return err


def test_bad_input_is_refused_before_any_training(toy_cache, teacher, tmp_path, capsys):
    base = ["distill", "--data", str(toy_cache), "--fold", "1", "--epochs", "1", "--quiet", "--set", *TINY]
    err = _refused(capsys, [*base, "--teacher", str(teacher), "--student", "tiny", "--out", str(tmp_path / "a")])
    assert "invalid choice: 'tiny'" in err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    err = _refused(capsys, [*base, "--teacher", str(garbage), "--out", str(tmp_path / "b")])
    assert "garbage.pt" in err and "checkpoint" in err
    other = load_checkpoint(teacher)
    other.class_names = ["a", "b", "c"]
    save_checkpoint(tmp_path / "other.pt", other)
    err = _refused(capsys, [*base, "--teacher", str(tmp_path / "other.pt"), "--out", str(tmp_path / "c")])
    assert "teacher's classes (a, b, c) are not the cache's" in err
    err = _refused(capsys, [*base[:4], "2", *base[5:], "--teacher", str(teacher), "--out", str(tmp_path / "d")])
    assert "not trained on fold 2" in err
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c", "d"))  # nothing trained, nothing written
