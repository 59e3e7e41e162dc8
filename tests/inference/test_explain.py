"""Explanations: dfer explain's outputs, bad input, baselines without attention, and checks that the
maps mean something (focus on the region that carries the class, lost with randomised weights;
temporal importance where frame order decides the class)."""

import csv
import json

import cv2
import numpy as np
import pytest
import torch

from dfer.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint, save_checkpoint
from dfer.cli import main
from dfer.data import ClipCache
from dfer.data.dataset import ClipDataset
from dfer.data.transforms import ClipTransformConfig
from dfer.engine import load_config
from dfer.inference.explain import Explainer
from dfer.inference.explain_sanity import gradcam_focus
from dfer.models import build_from_config, build_model
from dfer.runs import train_fold
from dfer.synth.patches import make_patch_cache
from synthetic import write_face_video


def test_explain_command_outputs(ckpt, tmp_path, capsys):
    video = write_face_video(tmp_path / "talk.mp4", n=40)
    out = tmp_path / "ex"
    assert main(["explain", str(video), "--checkpoint", str(ckpt), "--out", str(out), "--quiet",
                 "--backend", "openvino"]) == 0
    said = capsys.readouterr().out
    assert "PyTorch runs them (--backend openvino is not used)" in said
    info = json.loads((out / "explain.json").read_text())
    assert info["stage"] == "layer3" and info["attention_maps"] and info["explained"] == info["windows"] > 0
    n, t = info["explained"], 4
    z = np.load(out / "explanations.npz")
    assert z["gradcam"].shape == (n, t, 32, 32) and z["importance"].shape == (n, t)
    assert 0 <= float(z["gradcam"].min()) and float(z["gradcam"].max()) <= 1.0
    assert z["spatial_attention"].shape[0] == n and z["temporal_attention"].shape[1:] == (1, 1)
    rows = list(csv.DictReader((out / "importance.csv").open()))
    assert len(rows) == n * t and {r["position"] for r in rows} == {"0", "1", "2", "3"}
    strips = sorted((out / "strips").glob("*.png"))
    assert len(strips) == n and cv2.imread(str(strips[0])).shape[1] == t * 96
    cap = cv2.VideoCapture(str(out / "explain.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 112 + 96


def test_explain_names_a_target_that_is_not_a_class_in_one_line(ckpt, tmp_path, capsys):
    video = write_face_video(tmp_path / "v.mp4", n=20)
    assert main(["explain", str(video), "--checkpoint", str(ckpt), "--out", str(tmp_path / "a"), "--target", "Happy"]) == 2
    err = capsys.readouterr().err
    assert "--target 'Happy' is not a class of this checkpoint (classes: right, left, still)" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_explaining_a_baseline_gives_gradcam_without_attention_maps(ckpt, tmp_path, capsys):
    video = write_face_video(tmp_path / "v.mp4", n=20)
    trained = load_checkpoint(ckpt)
    base = build_model(name="r2plus1d_18", num_classes=3)
    path = save_checkpoint(tmp_path / "base.pt", make_checkpoint(model=base, class_names=trained.class_names,
                                                                 preprocess=trained.preprocess))
    assert main(["explain", str(video), "--checkpoint", str(path), "--out", str(tmp_path / "b"), "--quiet",
                 "--stage", "layer4", "--target", "left", "--no-video"]) == 0
    assert "no spatio-temporal attention block (a baseline): no attention maps" in capsys.readouterr().out
    z = np.load(tmp_path / "b" / "explanations.npz")
    assert "spatial_attention" not in z and (z["target"] == 1).all() and z["gradcam"].shape[1] == 4


def _dataset(root, ids, pre):
    return ClipDataset(ClipCache(root), ids, num_frames=pre.num_frames,
                       transform_config=ClipTransformConfig(size=pre.size, mean=pre.mean, std=pre.std))


@pytest.mark.slow
def test_gradcam_of_a_trained_model_finds_the_class_region_that_random_weights_miss(tmp_path):
    root = make_patch_cache(tmp_path / "patch", per_class=16, size=64)
    # the half-width network: 12 epochs of it cost a third of 8 of the full one, and it learns the task as well
    cfg = load_config(overrides=["model.name=dfer_r2plus1d_18_half", "data.num_frames=4", "data.size=64",
                                 "data.batch_size=8", "data.workers=0", "data.flip=0", "runtime.progress=false",
                                 "optim.epochs=12", "model.zero_init_residual=true",
                                 "deploy.int8=false"])  # the int8 export has its own tests
    m = train_fold(cfg, root, 1, tmp_path / "run")
    assert m.selected.test["war"] >= 0.8
    model, ckpt = model_from_checkpoint(tmp_path / "run" / "best.pt")
    pre, names = ckpt.preprocess, ckpt.class_names
    test = json.loads((root / "splits.json").read_text())["protocols"]["kfold"]["folds"][0]["test"]
    trained = gradcam_focus(model, pre, names, root, test)
    torch.manual_seed(0)
    randomised = gradcam_focus(build_from_config(model.config).eval(), pre, names, root, test)
    ratio, hit, ratio_rnd, hit_rnd = trained["mass_ratio"], trained["pointing"], randomised["mass_ratio"], randomised["pointing"]
    # measured: trained 7.4 / 100%, randomised 1.1 / 19% (patch: 4.8% of the frame)
    assert ratio > 4.0 and hit >= 0.75
    assert ratio_rnd < ratio / 2 and hit_rnd < hit


def test_temporal_importance_peaks_where_the_frame_order_decides(toy_run, toy_cache):
    """Right and left in the toy set are the same frames in opposite order, as Surprise and Fear are in
    dfer synth: the middle of the clip is alike in both, its ends are not."""
    model, ckpt = model_from_checkpoint(toy_run[1] / "best.pt")
    pre = ckpt.preprocess
    ids = [i for i in sorted(ClipCache(toy_cache).finished()) if not i.startswith("c2")]  # right and left only
    ds = _dataset(toy_cache, ids, pre)
    ex = Explainer(model, ckpt.class_names, mean=pre.mean, std=pre.std)
    imp = np.stack([ex.explain(ds[k][0].numpy(), int(ds[k][1])).importance for k in range(len(ds))])  # (N, T)
    mean = imp.mean(0)
    assert max(mean[0], mean[-1]) > 1.5 * mean[1:-1].mean()
