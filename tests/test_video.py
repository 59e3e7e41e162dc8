import numpy as np
import pytest

from dfer.data import iter_frames, probe, read_video
from dfer.errors import VideoError
from dfer.synth import write_video
from synthetic import face_frames, make_bad_inputs, write_frame_folder


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mov", ".mkv"])
def test_containers_decode_frame_accurately(tmp_path, ext):
    frames = face_frames(11, (64, 48))
    # Distinct brightness per frame so the order can be checked after lossy coding.
    for i, f in enumerate(frames):
        f[:16, :16] = 20 * i
    path = write_video(tmp_path / f"v{ext}", frames, fps=30)
    info = probe(path)
    assert info.num_frames == 11 and abs(info.fps - 30) < 1e-6
    assert (info.width, info.height) == (64, 48)
    assert abs(info.duration - 11 / 30) < 1e-6
    arr, info2 = read_video(path)
    assert arr.shape == (11, 48, 64, 3) and arr.dtype == np.uint8
    corner = arr[:, 8, 8, :].mean(axis=1)
    # frames come back in order, none skipped or repeated
    assert np.allclose(corner, 20 * np.arange(11), atol=8), corner


def test_frame_folder(tmp_path):
    folder = write_frame_folder(tmp_path / "00001", n=7, size=(40, 40))
    info = probe(folder)
    assert info.num_frames == 7 and info.codec == "images"
    assert len(list(iter_frames(folder))) == 7


def test_bad_inputs_raise_video_error_naming_the_file(tmp_path):
    bad = make_bad_inputs(tmp_path)
    for key in ("zero_byte", "text", "truncated"):
        with pytest.raises(VideoError) as err:
            list(iter_frames(bad[key]))
        assert str(bad[key]) in str(err.value)
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "missing.mp4")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        probe(empty)
    # 1-frame and grayscale videos are valid input
    assert len(list(iter_frames(bad["one_frame"]))) == 1
    gray = list(iter_frames(bad["gray"]))
    assert len(gray) == 10 and gray[0].shape[-1] == 3
