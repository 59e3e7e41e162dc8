"""Training and inference see the same faces: `dfer prepare` and `Recognizer` on one video.

The video's face moves along a known path (a pure translation of one drawn face), so its true
box on every frame is one fixed box moved along the path; the fixed box is dlib's, calibrated
as the median offset of per-frame detections from the path.
"""

import numpy as np
import pytest

from dfer.data import ClipCache, FaceSettings, load_spec, make_detector, prepare_dataset
from dfer.data.faces import Box, iou
from dfer.data.transforms import resize_frames, to_tensor
from dfer.data.video import open_source, write_video
from dfer.inference import InferenceSettings, Recognizer
from dfer.preprocess import Preprocess
from dfer.synth import Identity, draw_face

N, W, H = 60, 320, 240
PIXEL_TOLERANCE = 1  # intensity levels (of 255): what the model is fed may differ from the cached crop


def path(t: int) -> tuple[float, float]:
    return 110 + 100 * t / (N - 1), 120 + 12 * np.sin(2 * np.pi * t / 30)


def moving_face_video(file) -> None:
    ident = Identity()
    frames = []
    for t in range(N):
        img = np.full((H, W, 3), (70, 90, 110), np.uint8)
        draw_face(img, path(t), 0.7, ident=ident)
        frames.append(img)
    write_video(file, frames, fps=25, crf=12)


class CapturingBackend:
    """Stands in for a model: keeps every batch of clips it is fed, answers uniform logits."""

    name = detail = "capture"

    def __init__(self, num_classes: int) -> None:
        self.k = num_classes
        self.clips: list[np.ndarray] = []

    def __call__(self, clips):
        self.clips.extend(clips)
        return np.zeros((len(clips), self.k), np.float32)


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    moving_face_video(root / "videos" / "Happy" / "walk.mp4")
    settings = FaceSettings(size=64, max_frames=N)  # keep every frame, so every window frame is cached
    prepare_dataset(load_spec("folder", root / "videos"), root / "cache", settings, folds=2, progress=False)
    cache = ClipCache(root / "cache")
    clip_id = cache.index()[0].id
    pre = Preprocess(num_frames=8, size=48, face=cache.meta["face"])  # what training stores in a checkpoint
    backend = CapturingBackend(1)
    rec = Recognizer(backend, ["Happy"], pre, InferenceSettings(window_seconds=1.0, stride=10, min_track_frames=4))
    result = rec.predict_video(root / "videos" / "Happy" / "walk.mp4")
    return cache, clip_id, result, backend, pre


def test_prepare_finds_predicts_boxes_which_are_the_true_ones(both_paths):
    cache, clip_id, result, _, _ = both_paths
    video = cache.index()[0].source
    trace = cache.trace(clip_id)
    assert list(trace["frame"]) == list(range(N)) and result.track_ids == [0]
    cached = {int(r.frame): Box(r.x0, r.y0, r.x1, r.y1) for r in trace.itertuples()}
    live = {f: tb.box for f, tb in result.boxes[0].items()}
    assert sorted(live) == list(range(N))
    between = [iou(cached[f], live[f]) for f in range(N)]
    assert np.median(between) >= 0.95 and min(between) >= 0.9
    # the truth: one box moved along the drawn path
    frames = list(open_source(video).frames())
    det = make_detector(FaceSettings())
    offsets = [det(frames[f])[0].as_array() - np.tile(path(f), 2) for f in range(0, N, 3)]
    shape = np.median(offsets, axis=0)  # (4,) the face box relative to the path point
    truth = {f: Box.from_array(shape + np.tile(path(f), 2)) for f in range(N)}
    vs_truth = [iou(cached[f], truth[f]) for f in range(N)]
    assert np.median(vs_truth) >= 0.85 and min(vs_truth) >= 0.7, np.round(vs_truth, 3)
    # the cache says which boxes the detector found: every 3rd frame by default
    assert list(trace["source"][:4]) == ["detected", "tracked", "tracked", "detected"]
    assert [tb.source for _, tb in sorted(result.boxes[0].items())][:4] == list(trace["source"][:4])


def test_the_model_is_fed_the_cached_crops(both_paths):
    cache, clip_id, result, backend, pre = both_paths
    frames = cache.load_frames(clip_id)  # (N, 64, 64, 3): one crop per source frame
    assert len(backend.clips) == len(result.windows) >= 3
    std = np.array(pre.std, np.float32).reshape(3, 1, 1, 1)
    for window, fed in zip(sorted(result.windows, key=lambda w: w.end_frame), backend.clips):
        idx = list(window.frames)
        assert len(idx) == pre.num_frames and window.start_frame <= idx[0] and idx[-1] <= window.end_frame
        expected = to_tensor(resize_frames(frames[idx], pre.size), pre.mean, pre.std).numpy()  # as in evaluation
        diff_levels = np.abs(fed - expected) * std * 255
        assert diff_levels.max() <= PIXEL_TOLERANCE, diff_levels.max()


def test_the_cache_records_the_face_settings_it_used(both_paths):
    cache, *_ = both_paths
    face = FaceSettings.from_dict(cache.meta["face"])
    assert face == FaceSettings(size=64, max_frames=N) and not face.legacy
    assert make_detector(face).name == "dlib"
