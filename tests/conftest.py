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


# Settings of a tiny but real training run on the toy motion set (see synthetic.make_toy_cache).
TINY = ["data.num_frames=4", "data.size=32", "data.batch_size=4", "data.workers=0", "data.flip=0",
        "runtime.progress=false", "deploy.int8=false"]  # the int8 export at the end of training has its own test


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


@pytest.fixture(scope="module")
def ckpt(toy_run):
    """The toy run's selected checkpoint (a small real dfer model)."""
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
