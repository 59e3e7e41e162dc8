"""Collections on Ray (a local instance with 2 CPUs, started once): the same outputs as one process."""

import os
import sys
from functools import partial
from pathlib import Path

import pytest

from dfer.cli import main
from dfer.data import FaceSettings, load_spec, prepare_dataset
from dfer.scale import RayOptions, ray_map
from synthetic import make_bad_inputs, write_face_video

ray = pytest.importorskip("ray")
FAST = FaceSettings(size=48, max_frames=12)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module
    yield RayOptions()
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("collection") / "videos"
    for cls in ("a", "b"):
        for j in range(2):
            write_face_video(root / cls / f"{j}.mp4", n=10, seed=j)
    bad = make_bad_inputs(tmp_path_factory.mktemp("bad"))
    (root / "a" / "broken.mp4").write_bytes(bad["text"].read_bytes())
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "clips").iterdir())}


def test_prepare_on_ray_writes_the_same_cache(local_ray, videos, tmp_path):
    spec = load_spec("folder", videos)
    local = prepare_dataset(spec, tmp_path / "local", FAST, folds=2, progress=False)
    on_ray = prepare_dataset(spec, tmp_path / "ray", FAST, folds=2, progress=False, ray=local_ray)
    assert (local.ok, local.failed) == (on_ray.ok, on_ray.failed) == (4, 1)
    assert _files(tmp_path / "local") == _files(tmp_path / "ray")  # byte-identical crops, rows and traces
    for name in ("index.csv", "failures.csv", "splits.json", "meta.json"):
        assert (tmp_path / "local" / name).read_text() == (tmp_path / "ray" / name).read_text(), name
    assert "broken.mp4" in (tmp_path / "ray" / "failures.csv").read_text()
    again = prepare_dataset(spec, tmp_path / "ray", FAST, folds=2, progress=False, ray=local_ray)
    assert again.processed == 0 and again.skipped == 5  # a rerun skips finished clips


def _doubler(marker: str):
    """A worker whose process dies on its first item while `marker` exists (once)."""

    def run(item: int) -> int:
        try:
            os.remove(marker)  # atomic: of two workers that start at once, only one dies
        except FileNotFoundError:
            pass
        else:
            os._exit(1)  # the whole worker process dies mid-item
        if item < 0:
            raise ValueError(f"bad item {item}")
        return 2 * item

    return run


def test_a_dead_workers_item_runs_again_on_a_new_worker(local_ray, tmp_path):
    marker = tmp_path / "die-once"
    marker.write_text("x")
    out = {item: (result, error) for item, result, error in ray_map(partial(_doubler, str(marker)), [1, 2, -3, 4],
                                                                    local_ray)}
    assert not marker.exists()  # a worker did die
    assert {k: v for k, v in out.items() if k > 0} == {1: (2, None), 2: (4, None), 4: (8, None)}
    assert out[-3][0] is None and "bad item -3" in out[-3][1]  # an item that raises is reported, the rest goes on


def test_predict_on_ray_writes_the_same_predictions(local_ray, ckpt, videos, tmp_path, capsys):
    ckpt = str(ckpt)
    args = [str(videos / "a"), "--checkpoint", ckpt, "--stride", "4", "--window", "0.3", "--no-video", "--quiet"]
    assert main(["predict", *args, "--out", str(tmp_path / "local")]) == 0
    assert main(["predict", *args, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    printed = capsys.readouterr().out
    assert "2 done, 0 already done (skipped), 1 failed" in printed
    for stem in ("0", "1"):
        local, on_ray = (tmp_path / e / stem / "predictions.csv" for e in ("local", "ray"))
        assert local.read_text() == on_ray.read_text() and len(local.read_text().splitlines()) >= 2
    assert "broken.mp4" in (tmp_path / "ray" / "failures.csv").read_text()
    assert main(["predict", *args, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    assert "0 done, 2 already done (skipped), 1 failed" in capsys.readouterr().out
