"""dfer.checkpoint: what a checkpoint keeps of the preprocessing."""

from dfer.data import FaceSettings


def test_face_settings_reach_the_checkpoint_preprocess():
    from dfer.preprocess import Preprocess

    pre = Preprocess.from_dict(Preprocess(face=FaceSettings(detect_every=4).to_dict()).to_dict())
    assert FaceSettings.from_dict(pre.face).detect_every == 4


def test_a_checkpoint_in_the_last_releases_layout_loads_and_saves_back_the_same(tmp_path):
    """The file format is unchanged by the Checkpoint record: a plain dict as the last release wrote it
    loads, rebuilds its network, and is written back with the same keys in the same order."""
    import torch

    from dfer.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from dfer.models import build_model
    from dfer.preprocess import Preprocess

    model = build_model(name="dfer_r2plus1d_18_half", num_classes=3)
    config = model.config.to_dict()
    old = {"format": "dfer-checkpoint", "format_version": 1,
           "model": {"name": config["name"], "config": config, "state_dict": model.state_dict()},
           "class_names": ["a", "b", "c"], "preprocess": Preprocess(num_frames=4, size=32).to_dict(),
           "train_config": {"optim": {"lr": 0.001}}, "split": {"dataset": "toy", "fold": "1"},
           "metrics": {"test": {"war": 0.5}}, "versions": {"dfer": "0.1.0"}, "state": {"done": True}}
    torch.save(old, tmp_path / "old.pt")
    ckpt = load_checkpoint(tmp_path / "old.pt")
    assert ckpt.class_names == ["a", "b", "c"] and ckpt.split["fold"] == "1" and ckpt.state == {"done": True}
    rebuilt, _ = model_from_checkpoint(ckpt)
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), model.state_dict().values()))
    save_checkpoint(tmp_path / "again.pt", ckpt)
    again = torch.load(tmp_path / "again.pt", weights_only=True)
    assert list(again) == list(old) and again["metrics"] == old["metrics"] and again["model"]["config"] == config
