"""Video reading: files through PyAV (any container/codec FFmpeg knows) and folders of frame images.

Frames are RGB uint8 arrays (H, W, 3), decoded sequentially: sequential decoding is frame
accurate and, for the handful of frames a clip needs, faster than seeking.
Every failure raises `VideoError` naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from dfer.errors import VideoError

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
DEFAULT_FOLDER_FPS = 25.0  # frame folders carry no rate; DFEW's clips are 25 fps


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    num_frames: int  # from the container header or the folder listing; decoding may find a few fewer
    width: int
    height: int
    codec: str

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def is_frame_folder(path: Path) -> bool:
    return path.is_dir()


def list_frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    return files


def _folder_frames(folder: Path) -> list[Path]:
    files = list_frame_files(folder)
    if not files:
        raise VideoError(f"{folder}: folder holds no frame images ({', '.join(sorted(IMAGE_EXTS))})")
    return files


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty (0 bytes)")


def _open_container(path: Path):
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises several FFmpeg error types
        raise VideoError(f"{path}: not a readable video ({exc.__class__.__name__}: {exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: contains no video stream")
    return container


def probe(path: str | Path, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """Frame rate, frame count and size without decoding the whole video."""
    path = Path(path)
    _check_file(path)
    if is_frame_folder(path):
        files = _folder_frames(path)
        first = _read_image(files[0])
        return VideoInfo(str(path), folder_fps, len(files), first.shape[1], first.shape[0], "images")
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        n = int(stream.frames or 0)
        if n <= 0:
            # No count in the header (some avi/webm): count packets, which is cheap (no decoding).
            n = sum(1 for pkt in container.demux(stream) if pkt.size)
        if n <= 0 and stream.duration and stream.time_base and fps:
            n = int(round(float(stream.duration * stream.time_base) * fps))
        return VideoInfo(str(path), fps, n, stream.width, stream.height, stream.codec_context.name)
    except VideoError:
        raise
    except Exception as exc:
        raise VideoError(f"{path}: cannot read the video header ({exc})") from None
    finally:
        container.close()


def _read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grayscale images come back as 3 channels
    if img is None:
        raise VideoError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield every frame of a video file or frame folder as RGB uint8 (H, W, 3), in order."""
    path = Path(path)
    _check_file(path)
    if is_frame_folder(path):
        for f in _folder_frames(path):
            yield _read_image(f)
        return
    container = _open_container(path)
    n = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                n += 1
        except VideoError:
            raise
        except Exception as exc:
            if n == 0:
                raise VideoError(f"{path}: cannot decode any frame ({exc.__class__.__name__}: {exc})") from None
            # A truncated file: keep what decoded; the caller sees fewer frames.
            return
    finally:
        container.close()
    if n == 0:
        raise VideoError(f"{path}: no frame could be decoded")


def read_video(path: str | Path) -> tuple[np.ndarray, VideoInfo]:
    """All frames as (N, H, W, 3) uint8 plus the header info (with the decoded frame count)."""
    info = probe(path)
    frames = list(iter_frames(path))
    arr = np.stack(frames)
    info = VideoInfo(info.path, info.fps, len(frames), arr.shape[2], arr.shape[1], info.codec)
    return arr, info
