import numpy as np
import pytest

from dfer.data import VideoWriter, open_source, probe, read_video, write_video
from dfer.data.video import list_frame_files
from dfer.errors import VideoError
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
    assert len(list(open_source(folder).frames())) == 7


def test_bad_inputs_raise_video_error_naming_the_file(tmp_path):
    bad = make_bad_inputs(tmp_path)
    for key in ("zero_byte", "text", "truncated"):
        with pytest.raises(VideoError) as err:
            list(open_source(bad[key]).frames())
        assert str(bad[key]) in str(err.value)
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "missing.mp4")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        probe(empty)
    # 1-frame and grayscale videos are valid input
    assert len(list(open_source(bad["one_frame"]).frames())) == 1
    gray = list(open_source(bad["gray"]).frames())
    assert len(gray) == 10 and gray[0].shape[-1] == 3


def test_frame_files_sort_numerically(tmp_path):
    for name in ["frame10.png", "frame2.png", "frame1.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_frame_files(tmp_path)] == ["frame1.png", "frame2.png", "frame10.png"]


def test_the_writer_shows_the_file_only_when_closed(tmp_path):
    path = tmp_path / "out.mp4"
    w = VideoWriter(path, 25, 32, 32)
    w.write(np.zeros((32, 32, 3), np.uint8))
    assert not path.exists()  # only a temporary file until close
    w.close()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_the_writer_pads_odd_sizes_to_even(tmp_path):
    with VideoWriter(tmp_path / "out.mp4", 25, 33, 21) as w:
        w.write(np.zeros((21, 33, 3), np.uint8))
    info = probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.num_frames) == (34, 22, 1)


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "broken.mp4", 25, 32, 32) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_a_video_without_frames_is_refused(tmp_path):
    with pytest.raises(VideoError, match="no frames"):
        write_video(tmp_path / "none.mp4", [])


@pytest.fixture(scope="module")
def switching(tmp_path_factory):
    """An MJPEG AVI whose header and first 5 frames say 160x120 and whose next 5 are 640x480."""
    from hostile import size_switch

    return size_switch(tmp_path_factory.mktemp("switch") / "v.avi", [(5, 160, 120), (5, 640, 480)])


def test_every_frame_is_checked_against_the_frame_limit(switching):
    from dfer.data.video import FrameGuard

    src = open_source(switching, guard=FrameGuard(max_frame=(320, 240)))
    assert (src.width, src.height) == (160, 120)  # the header passes
    with pytest.raises(VideoError, match=r"frame 6 is 640x480, over the limit of 320x240 \(--max-frame\)"):
        list(src.decoded())


def test_a_guard_holds_on_every_pass_over_a_source(switching):
    from dfer.data.video import FrameGuard

    src = open_source(switching).guarded(FrameGuard(max_frame=(320, 240)))
    for _ in range(2):  # the analysis and the annotated video read the source twice
        with pytest.raises(VideoError, match="frame 6"):
            list(src.frames())


def test_a_guard_stops_a_video_past_its_counted_frames(tmp_path):
    from dfer.data.video import FrameGuard

    video = write_video(tmp_path / "v.mp4", face_frames(40, (64, 48)), fps=25)
    assert sum(1 for _ in open_source(video, guard=FrameGuard(max_frames=40)).decoded()) == 40
    with pytest.raises(VideoError, match="decodes past the 2 frames counted"):
        list(open_source(video, guard=FrameGuard(max_frames=2)).decoded())


def test_frames_within_the_limit_keep_their_own_size(switching):
    sizes = [(f.width, f.height) for f in open_source(switching).decoded()]
    assert sizes == [(160, 120)] * 5 + [(640, 480)] * 5
