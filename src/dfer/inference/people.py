"""People, not face tracks: which tracks of a video are the same person.

A track ends at every shot cut, exit or long occlusion; a person comes back as a new track. Each
track is described by dlib's face recognition network (a 128-d descriptor, ResNet, with its 5-point
landmark model for alignment; both ship in the `face-recognition-models` package, CC0: `pip install
"dfer[people]"`) on a few good frames, and tracks are joined into people:

- Good frames: only frames where the detector found the face (dlib's HOG detector finds frontal
  faces, so these are near-frontal), ranked by box side (px) x sharpness (variance of the Laplacian
  of the face's 64x64 greyscale crop); the best 3 are kept. One descriptor costs about 0.2 s on a
  2-core CPU, so each track is described on its best frame, and only tracks in a close call (a
  pair within 0.1 of the threshold) on their other two: never one per frame.
- A track's distance to another: the mean Euclidean distance between their descriptors. dlib's
  documented threshold is 0.6 (`same_person`): below it, two faces are the same person.
- Joining: agglomerative clustering with average linkage (the distance between two groups is the
  mean over their tracks' pairs). Single linkage would chain different people together through
  look-alikes (A near B near C makes A and C one person); complete linkage splits one person whose
  pose or light changes. Two tracks that overlap in time are never joined (one person is not on
  screen twice), nor are groups that contain such a pair. Merging stops when the closest allowed
  pair of groups is at or over the threshold.
- Names: a person keeps the number of its first appearance: P1, P2, ... in order of first frame.

Descriptors stay in memory; nothing about a face is written to disk except the outputs the user
asked for: people.jpg (one face per person, for the page and the user) and, only with
`--save-descriptors`, descriptors.npz.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dfer.errors import ConfigError
from dfer.options import SAME_PERSON  # noqa: F401 - where dfer.inference.people users look for it

FRAMES_PER_TRACK = 3
INSTALL = 'pip install "dfer[people]"'


def model_files() -> tuple[Path, Path] | None:
    """(5-point landmarks, face recognition network) from the face-recognition-models package, found
    without importing it (its __init__ imports pkg_resources, which current setuptools lacks)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "models"
    landmarks, network = folder / "shape_predictor_5_face_landmarks.dat", folder / "dlib_face_recognition_resnet_model_v1.dat"
    return (landmarks, network) if landmarks.is_file() and network.is_file() else None


def available() -> bool:
    return model_files() is not None


class FaceDescriber:
    """dlib's 128-d face descriptor of a face box on an RGB image."""

    def __init__(self) -> None:
        files = model_files()
        if files is None:
            raise ConfigError(f"people need dlib's face recognition models: {INSTALL}")
        import dlib

        self._shape = dlib.shape_predictor(str(files[0]))
        self._net = dlib.face_recognition_model_v1(str(files[1]))
        self._rect = dlib.rectangle

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """`image`: RGB uint8 (H, W, 3); `box`: x0, y0, x1, y1 in its pixels -> (128,) float32."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._shape(image, self._rect(x0, y0, x1, y1))
        return np.asarray(self._net.compute_face_descriptor(image, shape), dtype=np.float32)


@dataclass
class Candidate:
    """A good frame of a track, kept for its descriptor: the face's surroundings and its box in them."""

    score: float
    frame: int
    image: np.ndarray  # RGB uint8, the box grown by half its side on each side
    box: tuple[float, float, float, float]  # in `image`'s pixels


def sharpness(image: np.ndarray, box: tuple[float, float, float, float]) -> float:
    x0, y0, x1, y1 = (max(0, int(round(v))) for v in box)
    face = image[y0:y1, x0:x1]
    if face.size == 0:
        return 0.0
    grey = cv2.cvtColor(cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass
class Candidates:
    """The best `per_track` detected frames of every track, kept as they stream by (bounded memory)."""

    per_track: int = FRAMES_PER_TRACK
    by_track: dict[int, list[Candidate]] = field(default_factory=dict)

    def offer(self, track_id: int, frame_index: int, frame: np.ndarray, box: tuple[float, float, float, float]) -> None:
        side = max(box[2] - box[0], box[3] - box[1])
        if side < 20:  # too small to describe reliably
            return
        score = side * sharpness(frame, box)
        kept = self.by_track.setdefault(track_id, [])
        if len(kept) >= self.per_track and score <= kept[-1].score:
            return
        h, w = frame.shape[:2]
        pad = side / 2
        x0, y0 = int(max(0, box[0] - pad)), int(max(0, box[1] - pad))
        x1, y1 = int(min(w, box[2] + pad)), int(min(h, box[3] + pad))
        local = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
        kept.append(Candidate(score, frame_index, np.ascontiguousarray(frame[y0:y1, x0:x1]), local))
        kept.sort(key=lambda c: -c.score)
        del kept[self.per_track:]


def describe_tracks(candidates: Candidates, describer: FaceDescriber, *, tracks=None,
                    per_track: int | None = None) -> dict[int, np.ndarray]:
    """Track id -> (n, 128) descriptors of its best `per_track` frames (default: every kept one), for
    `tracks` (default: all); tracks without a good frame are left out."""
    out = {}
    for tid, kept in candidates.by_track.items():
        if kept and (tracks is None or tid in tracks):
            out[tid] = np.stack([describer(c.image, c.box) for c in kept[:per_track]])
    return out


AMBIGUOUS = 0.1  # a pair of tracks this close to the threshold gets more frames described


def people_of(candidates: Candidates, describer: FaceDescriber, spans: dict[int, tuple[int, int]],
              threshold: float = SAME_PERSON) -> tuple[dict[int, str], dict[int, np.ndarray]]:
    """Track id -> person name, and the descriptors used. Each track is described on its best frame
    first; only tracks in a pair whose distance is within AMBIGUOUS of the threshold (a close call)
    get their other good frames described, then the tracks are joined. Most tracks cost one descriptor."""
    descriptors = describe_tracks(candidates, describer, per_track=1)
    close = set()
    ids = sorted(descriptors)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if abs(_distance(descriptors[a], descriptors[b]) - threshold) < AMBIGUOUS:
                close |= {a, b}
    if close:
        descriptors.update(describe_tracks(candidates, describer, tracks=close))
    return name_people(join_tracks(descriptors, spans, threshold), spans), descriptors


THUMBNAIL = 96  # px, the side of a person's face in people.jpg


def thumbnails(candidates: Candidates, people: dict[int, str], size: int = THUMBNAIL) -> dict[str, np.ndarray]:
    """Person -> (size, size, 3) RGB uint8: the best-ranked good frame over the person's tracks (the
    ranking above: side x sharpness), cropped square around the face with a fifth of its side around it."""
    best: dict[str, Candidate] = {}
    for tid, kept in candidates.by_track.items():
        person = people.get(tid)
        if person and kept and (person not in best or kept[0].score > best[person].score):
            best[person] = kept[0]
    out = {}
    for person, c in best.items():
        x0, y0, x1, y1 = c.box
        side = 1.4 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        h, w = c.image.shape[:2]
        a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        face = c.image[b : int(min(h, cy + side / 2)), a : int(min(w, cx + side / 2))]
        if face.size:
            out[person] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    return out


def contact_sheet(order: list[str], faces: dict[str, np.ndarray], size: int = THUMBNAIL) -> np.ndarray:
    """(size, size * len(order), 3) RGB: the people's faces side by side in `order` (grey where none)."""
    sheet = np.full((size, size * max(1, len(order)), 3), 128, np.uint8)
    for k, person in enumerate(order):
        if person in faces:
            sheet[:, k * size : (k + 1) * size] = faces[person]
    return sheet


def descriptors_npz(people: dict[int, str], descriptors: dict[int, np.ndarray]) -> bytes:
    """The descriptors as an .npz (only with --save-descriptors): `descriptors` (n, 128) float32 and,
    per row, `track_id` and `person_id`."""
    import io

    tracks = sorted(descriptors)
    rows = [(t, people.get(t, ""), d) for t in tracks for d in descriptors[t]]
    buf = io.BytesIO()
    np.savez(buf, descriptors=np.stack([d for *_, d in rows]).astype(np.float32) if rows else np.zeros((0, 128), np.float32),
             track_id=np.array([t for t, *_ in rows], np.int64), person_id=np.array([p for _, p, _ in rows], dtype=str))
    return buf.getvalue()


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between two sets of descriptors (n, 128) and (m, 128)."""
    return float(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1).mean())


def join_tracks(descriptors: dict[int, np.ndarray], spans: dict[int, tuple[int, int]],
                threshold: float = SAME_PERSON) -> list[list[int]]:
    """Groups of track ids that are one person (average linkage, no two overlapping tracks in a group);
    every track in `spans` is in exactly one group (a track without a descriptor is a person alone)."""
    groups: list[list[int]] = [[t] for t in sorted(spans)]

    def overlap(a: int, b: int) -> bool:
        return spans[a][0] <= spans[b][1] and spans[b][0] <= spans[a][1]

    def linkage(ga: list[int], gb: list[int]) -> float | None:
        if any(overlap(a, b) for a in ga for b in gb):
            return None
        if not all(t in descriptors for t in ga + gb):
            return None
        pairs = [_distance(descriptors[a], descriptors[b]) for a in ga for b in gb]
        return float(np.mean(pairs))

    while True:
        best: tuple[float, int, int] | None = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                d = linkage(groups[i], groups[j])
                if d is not None and d < threshold and (best is None or d < best[0]):
                    best = (d, i, j)
        if best is None:
            return groups
        _, i, j = best
        groups[i] = sorted(groups[i] + groups[j])
        del groups[j]


def name_people(groups: list[list[int]], spans: dict[int, tuple[int, int]]) -> dict[int, str]:
    """Track id -> person name, P1, P2, ... in order of each person's first frame."""
    ordered = sorted(groups, key=lambda g: min(spans[t][0] for t in g))
    return {t: f"P{k + 1}" for k, g in enumerate(ordered) for t in g}


# -- named people ------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class Gallery:
    """Known people: name -> (n, 128) descriptors of their photos. A folder holds one sub-folder per name
    (its images) or image files named after the person (`Ada.jpg`). Matching people take the name."""

    names: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: str | Path, describer: FaceDescriber, threshold: float = SAME_PERSON) -> Gallery:
        """Every photo read and described before any video is: a file that is not an image stops here
        (ConfigError naming it); a photo without a face is skipped with a warning naming it."""
        from dfer.data.faces import DlibDetector

        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"--gallery {folder}: not a folder (one sub-folder or image file per name)")
        photos: dict[str, list[Path]] = {}
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                photos[entry.name] = sorted(p for p in entry.iterdir() if p.is_file() and not p.name.startswith("."))
            elif entry.is_file():
                photos.setdefault(entry.stem, []).append(entry)
        detector, names, warnings = DlibDetector(detect_size=640, upsample=1), {}, []
        for name, files in photos.items():
            descriptors = []
            for path in files:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.suffix.lower() in IMAGE_SUFFIXES else None
                if image is None:
                    raise ConfigError(f"--gallery: {path} is not an image dfer can read (use {', '.join(IMAGE_SUFFIXES)})")
                rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                boxes = detector(rgb)
                if not boxes:
                    warnings.append(f"{path}: no face found; skipped")
                    continue
                best = max(boxes, key=lambda b: b.area)
                descriptors.append(describer(rgb, tuple(float(v) for v in best.as_array())))
            if descriptors:
                names[name] = np.stack(descriptors)
            else:
                warnings.append(f"{folder / name}: no photo with a face; {name!r} cannot be recognised")
        listed = sorted(names)
        for i, a in enumerate(listed):
            for b in listed[i + 1:]:
                if _distance(names[a], names[b]) < threshold:
                    warnings.append(f"--gallery: {a!r} and {b!r} look like the same person (descriptor distance "
                                    f"{_distance(names[a], names[b]):.2f} < {threshold}); a match may take either name")
        return cls(names, warnings)

    def name(self, people: dict[int, str], descriptors: dict[int, np.ndarray],
             threshold: float = SAME_PERSON) -> dict[int, str]:
        """Track id -> name for people who match a gallery name (closest first, each name once); others keep P<n>."""
        by_person: dict[str, list[int]] = {}
        for track, person in people.items():
            by_person.setdefault(person, []).append(track)
        pairs = []
        for person, tracks in by_person.items():
            known = [descriptors[t] for t in tracks if t in descriptors]
            if not known:
                continue
            mine = np.concatenate(known)
            pairs += [(_distance(mine, theirs), person, name) for name, theirs in self.names.items()]
        renamed, used = {}, set()
        for d, person, name in sorted(pairs):
            if d < threshold and person not in renamed and name not in used:
                renamed[person] = name
                used.add(name)
        return {t: renamed.get(p, p) for t, p in people.items()}
