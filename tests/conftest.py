import os
from pathlib import Path

import pytest
import torch

# Keep the suite light on a 2-core machine.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))



@pytest.fixture(scope="session", autouse=True)
def converted_model_cache(tmp_path_factory):
    """Converted models (backend auto / onnx / openvino) go to one cache per test session, never ~/.cache."""
    root = tmp_path_factory.mktemp("dfer-cache")
    old = os.environ.get("DFER_CACHE_DIR")
    os.environ["DFER_CACHE_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("DFER_CACHE_DIR", None)
    else:
        os.environ["DFER_CACHE_DIR"] = old


MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture
def media_dir() -> Path:
    if not MEDIA.is_dir():
        pytest.skip("../shared/media is not present")
    return MEDIA


# Settings of a tiny but real training run on the toy motion set (see synthetic.make_toy_cache): the
# half-width network (dfer_r2plus1d_18_half, the paper's with half the channels) learns the toy set as well
# as the full one in 8 epochs and trains about 2.5x faster on 2 cores; the full network has its own tests.
TINY = ["model.name=dfer_r2plus1d_18_half", "data.num_frames=4", "data.size=32", "data.batch_size=4",
        "data.workers=0", "data.flip=0", "runtime.progress=false",
        "deploy.int8=false"]  # the int8 export at the end of training has its own test

# Inference settings that score a short synthetic video in a few windows (stride 8, 0.8 s windows).
FAST = dict(stride=8, window_seconds=0.8, min_track_frames=4, face={"detect_every": 2})


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory) -> Path:
    from synthetic import make_toy_cache

    return make_toy_cache(tmp_path_factory.mktemp("toy") / "cache", per_class=16)


@pytest.fixture(scope="session")
def toy_run(toy_cache, tmp_path_factory):
    """(metrics, run folder) of an 8-epoch training on fold 1 of the toy set; shared by several tests."""
    from dfer.engine import load_config
    from dfer.runs import train_fold

    out = tmp_path_factory.mktemp("toyrun") / "run"
    return train_fold(load_config(overrides=TINY + ["optim.epochs=8"]), toy_cache, 1, out), out


@pytest.fixture(scope="session")
def ckpt(toy_cache, tmp_path_factory) -> Path:
    """A real dfer checkpoint of the toy set's network and clip, seeded but never trained: for tests that
    need a model to run (serve, export, people, Ray), not one that is right. Costs no training."""
    import numpy as np

    from dfer.checkpoint import make_checkpoint, save_checkpoint
    from dfer.data.cache import ClipCache
    from dfer.engine import load_config
    from dfer.models import build_from_config
    from dfer.preprocess import Preprocess

    cache = ClipCache(toy_cache)
    cfg = load_config(overrides=TINY)
    cfg.model.num_classes = len(cache.meta["class_names"])
    torch.manual_seed(0)
    model = build_from_config(cfg.model, weights=None)
    seconds = [r.src_frames / r.fps for r in cache.index() if r.fps > 0 and r.src_frames > 0]
    pre = Preprocess(num_frames=cfg.data.num_frames, size=cfg.data.size, face=dict(cache.meta.get("face", {})),
                     clip_seconds=round(float(np.median(seconds)), 3) if seconds else 0.0)
    path = tmp_path_factory.mktemp("untrained") / "best.pt"
    save_checkpoint(path, make_checkpoint(model=model, class_names=list(cache.meta["class_names"]), preprocess=pre,
                                          train_config=cfg.to_dict(), split={"dataset": cache.meta.get("dataset", ""),
                                                                 "synthetic": bool(cache.meta.get("synthetic"))}))
    return path


@pytest.fixture(scope="module")
def trained_ckpt(toy_run) -> Path:
    """The toy run's selected checkpoint: a small dfer model trained to be right on the toy set."""
    return toy_run[1] / "best.pt"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 30-frame 160x120 video with one synthetic face."""
    from synthetic import write_face_video

    return write_face_video(tmp_path_factory.mktemp("media") / "talk.mp4", n=30, size=(160, 120))


def wait_healthy(base: str, proc=None, tries: int = 300) -> None:
    """Until a server on loopback answers /healthz (its output in the error if it never does)."""
    import time

    import httpx

    for _ in range(tries):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    if proc is not None:
        proc.kill()
    raise AssertionError(f"{base} did not come up" + (f": {proc.stdout.read().decode()}" if proc and proc.stdout else ""))
