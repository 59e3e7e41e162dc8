"""backend auto: OpenVINO converted once into a cache keyed by the checkpoint's digest, ONNX Runtime without
OpenVINO, PyTorch when no cache folder can be used; every choice says why."""

import shutil
from pathlib import Path

import pytest

import conftest
from dfer.inference import InferenceSettings, Recognizer
from synthetic import write_face_video

FAST = InferenceSettings(**conftest.FAST)


@pytest.fixture(scope="module")
def converted_cache(tmp_path_factory):
    """One conversion cache for the module: a conversion is the slow part, and its reuse is what is tested."""
    return tmp_path_factory.mktemp("converted")


@pytest.fixture
def local(ckpt, converted_cache, monkeypatch):
    monkeypatch.setenv("DFER_CACHE_DIR", str(converted_cache / "cache"))
    path = converted_cache / "best.pt"
    if not path.exists():
        shutil.copy(ckpt, path)
    return path


def test_auto_converts_to_openvino_into_the_digest_cache(local):
    from dfer.inference import conversion

    rec = Recognizer.from_checkpoint(local, settings=FAST)
    choice = rec.backend_choice
    assert rec.backend.name == "openvino" and choice["requested"] == "auto" and choice["used"] == "openvino"
    assert choice["agreement"]["top1_agreement"] == 1.0 and "agreement" in choice["why"]
    xml = conversion.converted_dir(local) / "model.xml"
    assert choice["model"] == str(xml) and xml.is_file() and not local.with_suffix(".onnx").exists()


def test_the_same_bytes_under_another_name_reuse_the_conversion(local, tmp_path):
    xml = Recognizer.from_checkpoint(local, settings=FAST).backend_choice["model"]
    stamp = Path(xml).stat().st_mtime_ns
    renamed = tmp_path / "renamed.pt"
    shutil.copy(local, renamed)
    again = Recognizer.from_checkpoint(renamed)
    assert again.backend_choice["model"] == xml and Path(xml).stat().st_mtime_ns == stamp
    res = again.predict_video(write_face_video(tmp_path / "v.mp4", n=24, size=(160, 120)))
    assert res.summary()["settings"]["backend_choice"]["used"] == "openvino"  # summary.json says what ran


def test_an_explicit_backend_is_used_where_onnx_converts_into_the_same_cache(local):
    from dfer.inference import conversion

    assert Recognizer.from_checkpoint(local, backend="onnx").backend.name == "onnx"
    assert (conversion.converted_dir(local) / "model.onnx").is_file()
    assert Recognizer.from_checkpoint(local, backend="torch").backend_choice["used"] == "torch"


def test_without_openvino_auto_takes_onnx_runtime(local, monkeypatch):
    from dfer.inference import runtime_choice

    monkeypatch.setattr(runtime_choice, "openvino_installed", lambda: False)
    assert Recognizer.from_checkpoint(local, device="cpu").backend.name == "onnx"


def test_without_a_usable_cache_folder_auto_falls_back_to_pytorch_saying_why(local, tmp_path, monkeypatch):
    from dfer.inference import runtime_choice

    monkeypatch.setattr(runtime_choice, "openvino_installed", lambda: False)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("DFER_CACHE_DIR", str(blocker))
    fallback = Recognizer.from_checkpoint(local, device="cpu")
    assert fallback.backend.name == "torch" and "DFER_CACHE_DIR" in " ".join(fallback.backend_choice["skipped"])
