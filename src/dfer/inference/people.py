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

from dfer.data.faces import DlibDetector
from dfer.data.frame import as_frame
from dfer.data.video import IMAGE_EXTS
from dfer.errors import ConfigError
from dfer.options import SAME_PERSON

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
    """dlib's 128-d face descriptor of a face: aligned first (5-point landmarks, a 150 x 150 chip with a
    quarter of the face's size around it), then described. A chip gives the same descriptor as the
    image it came from, so a track keeps chips (67 KB each), never frames."""

    def __init__(self) -> None:
        files = model_files()
        if files is None:
            raise ConfigError(f"people need dlib's face recognition models: {INSTALL}")
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(files[0]))
        self._net = dlib.face_recognition_model_v1(str(files[1]))

    def align(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """`image`: RGB uint8 (H, W, 3); `box`: x0, y0, x1, y1 in its pixels -> (150, 150, 3) aligned chip."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._shape(np.ascontiguousarray(image), self._dlib.rectangle(x0, y0, x1, y1))
        return np.asarray(self._dlib.get_face_chip(np.ascontiguousarray(image), shape, size=CHIP, padding=0.25))

    def describe(self, chip: np.ndarray) -> np.ndarray:
        """(150, 150, 3) aligned chip -> (128,) float32 (about 0.2 s on a 2-core CPU)."""
        return np.asarray(self._net.compute_face_descriptor(np.ascontiguousarray(chip)), dtype=np.float32)

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """`image`: RGB uint8 (H, W, 3); `box`: x0, y0, x1, y1 in its pixels -> (128,) float32."""
        return self.describe(self.align(image, box))


_DESCRIBER: FaceDescriber | None = None


def describer() -> FaceDescriber:
    """The descriptor models, loaded once per process and only when first needed (a video with a face)."""
    global _DESCRIBER
    if _DESCRIBER is None:
        _DESCRIBER = FaceDescriber()
    return _DESCRIBER


CHIP = 150  # side of dlib's aligned face chip
THUMBNAIL = 96  # px, the side of a person's face in people.jpg
CANDIDATE_BYTES = CHIP * CHIP * 3 + THUMBNAIL * THUMBNAIL * 3
BUDGET = 128 << 20  # bytes of chips a job keeps for ended tracks' close calls; past it they keep their best


@dataclass
class Candidate:
    """A good frame of a track, kept for its descriptor and the person's thumbnail (never the frame)."""

    score: float
    frame: int
    chip: np.ndarray | None  # (150, 150, 3) aligned face; None once described (the descriptor is kept)
    thumb: np.ndarray  # (96, 96, 3) RGB: the face with a fifth of its side around it


def sharpness(face: np.ndarray) -> float:
    """Variance of the Laplacian of the face's 64x64 grey copy (grey or RGB uint8 in)."""
    if face.size == 0:
        return 0.0
    small = cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)
    grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass
class Candidates:
    """The best `per_track` detected frames of every track, kept as they stream by, as aligned chips and
    thumbnails (about 95 KB a frame whatever the video's resolution). Bounded: once the chips of ended
    tracks pass `budget` bytes, the oldest ended tracks keep their best chip only, then are described at
    once and keep their descriptor and thumbnail (0.5 KB + 27 KB); `notes` says so."""

    describer: FaceDescriber | None = None  # aligns (and, past the budget, describes); default: the process's
    per_track: int = FRAMES_PER_TRACK
    budget: int = BUDGET
    by_track: dict[int, list[Candidate]] = field(default_factory=dict)
    described: dict[int, np.ndarray] = field(default_factory=dict)  # track -> (1, 128), described early
    ended: list[int] = field(default_factory=list)  # ended tracks in order, whose chips count in the budget
    trimmed: int = 0  # ended tracks cut to their best chip
    early: int = 0  # ended tracks described before the end

    def _describer(self) -> FaceDescriber:
        if self.describer is None:
            self.describer = describer()
        return self.describer

    def offer(self, track_id: int, frame_index: int, frame, box: tuple[float, float, float, float]) -> None:
        """A detected face of a track: kept when it ranks among the track's best (box side x sharpness)."""
        frame = as_frame(frame)
        side = max(box[2] - box[0], box[3] - box[1])
        if side < 20:  # too small to describe reliably
            return
        score = side * sharpness(frame.luma(*(int(round(v)) for v in box)))  # the decoded luma: no conversion
        kept = self.by_track.setdefault(track_id, [])
        if len(kept) >= self.per_track and score <= kept[-1].score:
            return
        pad = side / 2  # dlib aligns with the face's surroundings: the box grown by half its side
        x0, y0 = int(max(0, box[0] - pad)), int(max(0, box[1] - pad))
        around = frame.region(x0, y0, int(box[2] + pad), int(box[3] + pad))
        local = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
        kept.append(Candidate(score, frame_index, self._describer().align(around, local), _thumbnail(around, local)))
        kept.sort(key=lambda c: -c.score)
        del kept[self.per_track:]

    def end(self, track_id: int) -> None:
        """The track is over: its chips count in the budget from now on (trimmed or described past it)."""
        if track_id not in self.by_track:
            return
        self.ended.append(track_id)
        over = self._bytes() - self.budget
        for tid in self.ended:  # the oldest first: to their best chip
            if over <= 0:
                return
            kept = self.by_track[tid]
            if len(kept) > 1 and kept[0].chip is not None:
                over -= CHIP * CHIP * 3 * sum(c.chip is not None for c in kept[1:])
                del kept[1:]
                self.trimmed += 1
        for tid in self.ended:  # then described now: descriptor and thumbnail only
            if over <= 0:
                return
            best = self.by_track[tid][0]
            if best.chip is not None:
                self.described[tid] = self._describer().describe(best.chip)[None]
                best.chip = None
                over -= CHIP * CHIP * 3
                self.early += 1

    def _bytes(self) -> int:
        return sum(CHIP * CHIP * 3 for t in self.ended for c in self.by_track[t] if c.chip is not None)

    @property
    def notes(self) -> list[str]:
        out = []
        if self.trimmed:
            out.append(f"{self.trimmed} track(s) kept one face for the people stage (memory budget): close calls "
                       "judged on that face")
        if self.early:
            out.append(f"{self.early} track(s) were described as they ended (memory budget)")
        return out


def _thumbnail(image: np.ndarray, box: tuple[float, float, float, float], size: int = THUMBNAIL) -> np.ndarray:
    """(size, size, 3): the face square with a fifth of its side around it (grey where the image ends)."""
    x0, y0, x1, y1 = box
    side = 1.4 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = image.shape[:2]
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    face = image[b : int(min(h, cy + side / 2)), a : int(min(w, cx + side / 2))]
    if not face.size:
        return np.full((size, size, 3), 128, np.uint8)
    return cv2.resize(np.ascontiguousarray(face), (size, size), interpolation=cv2.INTER_AREA)


def describe_tracks(candidates: Candidates, describer: FaceDescriber, *, tracks=None,
                    per_track: int | None = None) -> dict[int, np.ndarray]:
    """Track id -> (n, 128) descriptors of its best `per_track` frames (default: every kept one), for
    `tracks` (default: all); tracks without a good frame are left out. A track described early keeps
    that one descriptor."""
    out = {}
    for tid, kept in candidates.by_track.items():
        if not kept or (tracks is not None and tid not in tracks):
            continue
        if tid in candidates.described:
            out[tid] = candidates.described[tid]
            continue
        chips = [c.chip for c in kept[:per_track] if c.chip is not None]
        out[tid] = np.stack([describer.describe(chip) for chip in chips])
    return out


AMBIGUOUS = 0.1  # a pair of tracks this close to the threshold gets more frames described


def people_of(candidates: Candidates, describer: FaceDescriber, spans: dict[int, tuple[int, int]],
              threshold: float = SAME_PERSON) -> tuple[dict[int, str], dict[int, np.ndarray]]:
    """Track id -> person name, and the descriptors used. Each track is described on its best frame
    first; only tracks in a pair whose distance is within AMBIGUOUS of the threshold (a close call)
    get their other good frames described, then the tracks are joined. Most tracks cost one descriptor."""
    descriptors = describe_tracks(candidates, describer, per_track=1)
    ids = sorted(descriptors)
    if len(ids) > 1:
        first = np.stack([descriptors[t][0] for t in ids])  # (n, 128)
        d = pairwise(first)
        close_pairs = np.abs(d - threshold) < AMBIGUOUS
        np.fill_diagonal(close_pairs, False)
        close = {ids[i] for i in np.flatnonzero(close_pairs.any(axis=1))}
        if close:
            descriptors.update(describe_tracks(candidates, describer, tracks=close))
    return name_people(join_tracks(descriptors, spans, threshold), spans), descriptors


def thumbnails(candidates: Candidates, people: dict[int, str]) -> dict[str, np.ndarray]:
    """Person -> (96, 96, 3) RGB uint8: the best-ranked good frame over the person's tracks (the ranking
    above: side x sharpness), cropped square around the face with a fifth of its side around it."""
    best: dict[str, Candidate] = {}
    for tid, kept in candidates.by_track.items():
        person = people.get(tid)
        if person and kept and (person not in best or kept[0].score > best[person].score):
            best[person] = kept[0]
    return {person: c.thumb for person, c in best.items()}


def contact_sheet(order: list[str], faces: dict[str, np.ndarray], size: int = THUMBNAIL, *,
                  warning: str = "") -> np.ndarray:
    """(size, size * len(order), 3) RGB: the people's faces side by side in `order` (grey where none);
    with `warning`, a line of it on a dark band below the faces (the sheet at least 400 px wide for it)."""
    width = size * max(1, len(order))
    band = 22 if warning else 0
    sheet = np.full((size + band, max(width, 400) if warning else width, 3), 128, np.uint8)
    for k, person in enumerate(order):
        if person in faces:
            face = faces[person]
            sheet[:size, k * size : (k + 1) * size] = face if face.shape[0] == size else cv2.resize(face, (size, size))
    if warning:
        sheet[size:] = 30
        scale = 0.42
        while scale > 0.2 and cv2.getTextSize(warning, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > sheet.shape[1] - 8:
            scale *= 0.9
        cv2.putText(sheet, warning, (4, size + 15), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 220, 80), 1, cv2.LINE_AA)
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


def pairwise(x: np.ndarray) -> np.ndarray:
    """(n, 128) -> (n, n) Euclidean distances."""
    sq = (x.astype(np.float64) ** 2).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x.astype(np.float64) @ x.astype(np.float64).T, 0.0))


def track_distances(descriptors: dict[int, np.ndarray], order: list[int], block: int = 512) -> np.ndarray:
    """(n, n) float32 mean distance between the descriptor sets of the tracks in `order` (inf without
    descriptors), computed `block` descriptors at a time (memory: block x all descriptors)."""
    n = len(order)
    out = np.full((n, n), np.inf, np.float32)
    have = [k for k, t in enumerate(order) if t in descriptors and len(descriptors[t])]
    if not have:
        return out
    sets = [np.asarray(descriptors[order[k]], np.float64) for k in have]
    x = np.concatenate(sets)  # (m, 128), each track's rows together
    counts = np.array([len(v) for v in sets])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sq = (x ** 2).sum(1)
    sums = np.zeros((len(have), len(have)))
    owner = np.repeat(np.arange(len(have)), counts)
    for r0 in range(0, len(x), block):
        r1 = min(len(x), r0 + block)
        d = np.sqrt(np.maximum(sq[r0:r1, None] + sq[None, :] - 2 * x[r0:r1] @ x.T, 0.0))  # (block, m)
        by_col = np.add.reduceat(d, starts, axis=1)  # (block, tracks)
        np.add.at(sums, owner[r0:r1], by_col)
    idx = np.array(have)
    out[np.ix_(idx, idx)] = (sums / np.outer(counts, counts)).astype(np.float32)
    return out


SPREAD = 0.1  # a group is one person only if no pair of its tracks is this far over the threshold


def join_tracks(descriptors: dict[int, np.ndarray], spans: dict[int, tuple[int, int]],
                threshold: float = SAME_PERSON) -> list[list[int]]:
    """Groups of track ids that are one person; every track in `spans` is in exactly one group (a track
    without a descriptor is a person alone).

    Average linkage (the mean distance over the two groups' track pairs) under `threshold`, and never a
    group with two tracks that overlap in time, nor one with a pair of tracks farther apart than
    `threshold + SPREAD`: where two groups are close, they stay apart (two ids for one person cost a
    user less than one id for two people). Run as the nearest-neighbour chain over a distance matrix
    kept by the Lance-Williams update: O(n^2) time and memory in tracks (the greedy search it replaced,
    merging the closest pair again and again, was cubic: 300 tracks took 172 s)."""
    order = sorted(spans)
    n = len(order)
    if n == 0:
        return []
    avg = track_distances(descriptors, order)  # (n, n)
    far = avg.copy()  # the largest track-pair distance between two groups (complete linkage)
    starts = np.array([spans[t][0] for t in order])
    ends = np.array([spans[t][1] for t in order])
    clash = (starts[:, None] <= ends[None, :]) & (starts[None, :] <= ends[:, None])  # overlap in time
    size = np.ones(n, np.float32)
    members = [[t] for t in order]
    active = np.ones(n, bool)
    np.fill_diagonal(clash, False)

    def allowed(i: int) -> np.ndarray:
        """Distance from group i to every group it may join (inf where it may not)."""
        d = np.where(clash[i] | (far[i] >= threshold + SPREAD) | ~active, np.inf, avg[i])
        d[i] = np.inf
        return d

    chain: list[int] = []
    while True:
        if not chain:
            starts_left = np.flatnonzero(active)
            if starts_left.size == 0:
                break
            chain.append(int(starts_left[0]))
        i = chain[-1]
        d = allowed(i)
        j = int(np.argmin(d))
        if not np.isfinite(d[j]) or d[j] >= threshold:  # nothing to join: group i is final
            active[i] = False
            chain.pop()
            continue
        if len(chain) > 1 and d[chain[-2]] <= d[j]:
            j = chain[-2]  # reciprocal nearest neighbours (ties keep the chain's order): merge
        if len(chain) > 1 and j == chain[-2]:
            del chain[-2:]
            _merge(min(i, j), max(i, j), avg, far, clash, size, members, active)
        else:
            chain.append(j)
    return [sorted(m) for m in members if m]


def _merge(a: int, b: int, avg, far, clash, size, members: list[list[int]], active) -> None:
    """Group b joins group a: the Lance-Williams update of the average and farthest distances (n x n)."""
    avg[a] = avg[:, a] = (size[a] * avg[a] + size[b] * avg[b]) / (size[a] + size[b])
    far[a] = far[:, a] = np.maximum(far[a], far[b])
    clash[a] = clash[:, a] = clash[a] | clash[b]
    clash[a, a] = False
    avg[a, a] = far[a, a] = np.inf
    size[a] += size[b]
    members[a] += members[b]
    active[b] = False
    members[b] = []


@dataclass
class PeopleFound:
    """What the people stage of one video found."""

    people: dict[int, str]  # track id -> person (P1, ... or a gallery name)
    descriptors: dict[int, np.ndarray]  # track id -> (n, 128): kept only when the caller asked
    faces: dict[str, np.ndarray]  # person -> (96, 96, 3) RGB thumbnail
    seconds: float  # time spent describing and joining
    notes: list[str]  # what the memory budget changed


class PeopleStage:
    """Tracks joined into people over one pass: good frames kept as the tracks stream by (`offer`, `end`),
    people found at the end (`finish`), named from `gallery` when given."""

    def __init__(self, threshold: float = SAME_PERSON, gallery: str = "", keep_descriptors: bool = False) -> None:
        self.threshold, self.gallery, self.keep_descriptors = threshold, gallery, keep_descriptors
        self.candidates = Candidates()

    def offer(self, track_id: int, index: int, frame, box: tuple[float, float, float, float]) -> None:
        self.candidates.offer(track_id, index, frame, box)

    def end(self, track_id: int) -> None:
        self.candidates.end(track_id)

    def finish(self, spans: dict[int, tuple[int, int]]) -> PeopleFound:
        import time

        t0 = time.perf_counter()
        found, descriptors = people_of(self.candidates, describer(), spans, self.threshold)
        if self.gallery:
            found = gallery(self.gallery, self.threshold).name(found, descriptors, self.threshold)
        return PeopleFound(found, descriptors if self.keep_descriptors else {}, thumbnails(self.candidates, found),
                           time.perf_counter() - t0, self.candidates.notes)


def name_people(groups: list[list[int]], spans: dict[int, tuple[int, int]]) -> dict[int, str]:
    """Track id -> person name, P1, P2, ... in order of each person's first frame."""
    ordered = sorted(groups, key=lambda g: min(spans[t][0] for t in g))
    return {t: f"P{k + 1}" for k, g in enumerate(ordered) for t in g}


# -- named people ------------------------------------------------------------------------------
_GALLERIES: dict[tuple[str, float], Gallery] = {}


def gallery(folder: str | Path, threshold: float = SAME_PERSON) -> Gallery:
    """The known people of `folder` under `threshold`, read and described once per process."""
    key = (str(Path(folder).resolve()), float(threshold))
    if key not in _GALLERIES:
        _GALLERIES[key] = Gallery.load(folder, describer(), threshold)
    return _GALLERIES[key]



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
                image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.suffix.lower() in IMAGE_EXTS else None
                if image is None:
                    raise ConfigError(f"--gallery: {path} is not an image dfer can read (use {', '.join(sorted(IMAGE_EXTS))})")
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
