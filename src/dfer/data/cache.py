"""The clip cache: face frames of every clip on disk, ready for training.

Layout (documented in README.md):

    CACHE/meta.json        dataset name, class names, face settings, dfer version
    CACHE/index.csv        one row per clip: id,label,subject,source,num_frames,src_frames,fps,status,reason
    CACHE/failures.csv     clip,source,reason for every clip that could not be prepared
    CACHE/splits.json      cross-validation folds (see dfer.data.splits)
    CACHE/clips/<id>.npy   uint8 (N, S, S, 3) RGB face crops, N <= max_frames, S = size
    CACHE/clips/<id>.json  the clip's index row plus its per-frame trace (source frame index, face box,
                           detected or filled in); written last, so its presence means "finished"

Every file is written to a temporary name and renamed into place (atomic on POSIX), so a
killed job leaves no half-written clip and a rerun resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfer.data.face_settings import FACE_PIPELINE_VERSION, FaceSettings
from dfer.errors import DatasetError
from dfer.files import atomic_write_bytes, atomic_write_json, atomic_write_text

INDEX_FIELDS = ["id", "label", "subject", "source", "num_frames", "src_frames", "fps", "status", "reason"]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(text: str) -> str:
    return _SAFE.sub("_", text).strip("_") or "clip"


@dataclass
class ClipRow:
    id: str
    label: int
    subject: str
    source: str
    num_frames: int = 0
    src_frames: int = 0
    fps: float = 0.0
    status: str = "ok"  # ok | failed
    reason: str = ""


def _csv_text(header: list[str], rows: Iterable[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


class ClipCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.clips_dir = self.root / "clips"

    # -- writing -------------------------------------------------------------------------
    def init(self, meta: dict[str, Any]) -> None:
        """Create the cache, or check that an existing one was prepared the same way."""
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        path = self.root / "meta.json"
        if path.exists():
            old = json.loads(path.read_text())
            old_face = FaceSettings.from_dict(old.get("face"))
            if "face" in old and old_face.legacy:
                raise DatasetError(
                    f"{self.root}: cache was prepared by face pipeline version {old_face.version} (an earlier dfer); "
                    f"this dfer crops faces with version {FACE_PIPELINE_VERSION}, so new clips would not match the "
                    "old ones. The cache still trains as it is; to add clips, prepare into a new --out folder"
                )
            for key in ("class_names", "face"):
                if key in old and old[key] != meta.get(key):
                    raise DatasetError(
                        f"{self.root}: cache was prepared with a different {key} "
                        f"({old[key]} vs {meta.get(key)}); prepare into a new folder"
                    )
        atomic_write_json(path, meta)

    def frames_path(self, clip_id: str) -> Path:
        return self.clips_dir / f"{clip_id}.npy"

    def row_path(self, clip_id: str) -> Path:
        return self.clips_dir / f"{clip_id}.json"

    def write_clip(self, row: ClipRow, frames: np.ndarray | None, trace: dict[str, list] | None = None) -> None:
        """Frames first, then the row (with the per-frame trace): a row on disk means the clip is complete."""
        if frames is not None:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(frames, dtype=np.uint8))
            atomic_write_bytes(self.frames_path(row.id), buf.getvalue())
        atomic_write_json(self.row_path(row.id), {**asdict(row), **({"trace": trace} if trace else {})})

    def _row_file(self, clip_id: str) -> dict[str, Any]:
        path = self.row_path(clip_id)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read the clip's record ({exc})") from None

    def finished(self) -> dict[str, ClipRow]:
        rows = {}
        if not self.clips_dir.is_dir():
            return rows
        for p in self.clips_dir.glob("*.json"):
            try:
                d = json.loads(p.read_text())
                d.pop("trace", None)
                rows[p.stem] = ClipRow(**d)
            except (ValueError, TypeError, AttributeError):
                continue  # a foreign or damaged file: treat the clip as not done
        return rows

    def trace(self, clip_id: str):
        """Per kept frame of a clip: `frame` (source frame index), `x0 y0 x1 y1` (face box in source
        pixels), `source` (detected | tracked), as a DataFrame in the order of the cached frames.
        Caches of face pipeline version 1 kept no trace: `DatasetError`."""
        import pandas as pd

        trace = self._row_file(clip_id).get("trace")
        if trace is None:
            raise DatasetError(f"{self.row_path(clip_id)}: no per-frame trace (prepared by an earlier dfer, or failed)")
        boxes = np.asarray(trace["box"], dtype=np.float64).reshape(-1, 4)
        return pd.DataFrame({"frame": trace["frame"], "x0": boxes[:, 0], "y0": boxes[:, 1], "x1": boxes[:, 2],
                             "y1": boxes[:, 3], "source": ["detected" if d else "tracked" for d in trace["detected"]]})

    def write_index(self, rows: Iterable[ClipRow]) -> tuple[int, int]:
        rows = sorted(rows, key=lambda r: r.id)
        atomic_write_text(self.root / "index.csv", _csv_text(INDEX_FIELDS, ([getattr(r, f) for f in INDEX_FIELDS] for r in rows)))
        failed = [r for r in rows if r.status != "ok"]
        fails = ([r.id, r.source, r.reason] for r in failed)
        atomic_write_text(self.root / "failures.csv", _csv_text(["clip", "source", "reason"], fails))
        return len(rows) - len(failed), len(failed)

    # -- reading -------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        path = self.root / "meta.json"
        if not path.is_file():
            raise DatasetError(f"{self.root}: not a dfer clip cache (no meta.json); create one with `dfer prepare`")
        return json.loads(path.read_text())

    def index(self, status: str | None = "ok") -> list[ClipRow]:
        path = self.root / "index.csv"
        if not path.is_file():
            raise DatasetError(f"{self.root}: no index.csv; run `dfer prepare` to (re)build it")
        with path.open(newline="") as f:
            out = []
            for r in csv.DictReader(f):
                row = ClipRow(
                    id=r["id"], label=int(r["label"]), subject=r["subject"], source=r["source"],
                    num_frames=int(r["num_frames"]), src_frames=int(r["src_frames"]), fps=float(r["fps"]),
                    status=r["status"], reason=r["reason"],
                )
                if status is None or row.status == status:
                    out.append(row)
        return out

    def load_frames(self, clip_id: str, mmap: bool = True) -> np.ndarray:
        path = self.frames_path(clip_id)
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read cached frames ({exc})") from None
