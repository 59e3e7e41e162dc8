"""`dfer prepare`: every clip of a dataset through the face pipeline into the clip cache.

One bad video never stops the run: its failure is recorded (index.csv status, failures.csv)
and the rest goes on. Finished clips are skipped on a rerun; `--shard I/N` splits the work
across machines that share the cache folder.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from dfer.data.adapters import ClipRecord, DatasetSpec
from dfer.data.cache import ClipCache, ClipRow
from dfer.data.extract import extract_face_clip
from dfer.data.face_settings import FaceSettings
from dfer.data.faces import make_detector
from dfer.data.splits import make_splits
from dfer.errors import DatasetError, DferError
from dfer.files import atomic_write_json
from dfer.progress import ignore_interrupt, progress_bar
from dfer.scale import RayOptions, ray_map


@dataclass
class PrepareSummary:
    total: int
    processed: int
    skipped: int
    ok: int
    failed: int
    seconds: float
    decoded_frames: int
    cache: str
    splits_note: str = ""

    def line(self) -> str:
        text = (
            f"prepared {self.processed} clips ({self.ok} ok in cache, {self.failed} failed, "
            f"{self.skipped} already done) of {self.total} in {self.seconds:.1f}s "
            f"({self.processed / max(self.seconds, 1e-9):.2f} clips/s) -> {self.cache}"
        )
        return text + (f"\nsplits.json not written: {self.splits_note}" if self.splits_note else "")


_worker_detector = None
_worker_settings: FaceSettings | None = None


def _init_worker(settings: dict[str, Any]) -> None:
    global _worker_detector, _worker_settings
    ignore_interrupt()
    _worker_settings = FaceSettings.from_dict(settings)
    _worker_detector = make_detector(_worker_settings)


def _process(args: tuple[ClipRecord, str]) -> tuple[ClipRow, int]:
    rec, cache_root = args
    cache = ClipCache(cache_root)
    row = ClipRow(rec.clip_id, rec.label, rec.subject, rec.source)
    frames, trace, decoded = None, None, 0
    try:
        clip = extract_face_clip(rec.source, _worker_detector, _worker_settings, rec.stop)
        frames, trace, decoded = clip.frames, clip.trace(), clip.decoded_frames
        row.num_frames, row.src_frames, row.fps = len(clip.frames), clip.decoded_frames, round(clip.fps, 4)
    except DferError as exc:
        row.status, row.reason = "failed", str(exc)
    except Exception as exc:  # anything unexpected is recorded too, never fatal to the run
        row.status, row.reason = "failed", f"{rec.source}: unexpected {exc.__class__.__name__}: {exc}"
    cache.write_clip(row, frames, trace)
    return row, decoded


def _dedupe(records: list[ClipRecord]) -> tuple[list[ClipRecord], list[ClipRow]]:
    """Duplicate ids: the first wins, later ones are recorded as failures."""
    seen: dict[str, ClipRecord] = {}
    dup_rows = []
    for rec in records:
        if rec.clip_id in seen:
            dup_rows.append(ClipRow(rec.clip_id + "__dup", rec.label, rec.subject, rec.source, status="failed",
                                    reason=f"{rec.source}: duplicate clip id {rec.clip_id!r} (also {seen[rec.clip_id].source})"))
        else:
            seen[rec.clip_id] = rec
    return list(seen.values()), dup_rows


def _ray_worker(settings: dict[str, Any]):
    """Runs in a Ray actor: the detector is made once, then `_process` runs item after item."""
    _init_worker(settings)
    return _process


def _run_jobs(jobs: list[tuple[ClipRecord, str]], settings: FaceSettings, workers: int, bar,
              on_clip: Callable[[ClipRow], None] | None, ray: RayOptions | None = None) -> int:
    """Every job through `_process`: in `workers` local processes, or on Ray; returns the frames decoded."""
    decoded = 0

    def done(row: ClipRow, n: int) -> None:
        nonlocal decoded
        decoded += n
        bar.update(1)
        if on_clip:
            on_clip(row)

    if ray is not None:
        for (rec, root), out, error in ray_map(partial(_ray_worker, settings.to_dict()), jobs, ray):
            if error is not None:  # the clip's worker kept dying: record it like any failed clip
                row = ClipRow(rec.clip_id, rec.label, rec.subject, rec.source, status="failed",
                              reason=f"{rec.source}: the worker failed ({error})")
                ClipCache(root).write_clip(row, None)
                out = (row, 0)
            done(*out)
    elif workers > 1 and len(jobs) > 1:
        ctx = mp.get_context("spawn")  # dlib and av are not fork-safe with threads
        with ctx.Pool(workers, initializer=_init_worker, initargs=(settings.to_dict(),)) as pool:
            for row, n in pool.imap_unordered(_process, jobs, chunksize=1):
                done(row, n)
    else:
        _init_worker(settings.to_dict())
        for job in jobs:
            done(*_process(job))
    return decoded


def prepare_dataset(
    spec: DatasetSpec,
    out: str | Path,
    settings: FaceSettings,
    *,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    retry_failed: bool = False,
    folds: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    progress: bool = True,
    on_clip: Callable[[ClipRow], None] | None = None,
    ray: RayOptions | None = None,
) -> PrepareSummary:
    """Every clip of `spec` through the face pipeline into the cache at `out`, then splits.json.

    `ray`: run the clips on a Ray cluster (see dfer.scale) instead of `workers` local processes;
    the cache written is the same, byte for byte.
    """
    start = time.perf_counter()
    cache = ClipCache(out)
    cache.init({
        "dataset": spec.name,
        "class_names": spec.class_names,
        "face": settings.to_dict(),
        "grouped": spec.grouped,
        "synthetic": spec.synthetic,
        "format": "clips/<id>.npy uint8 (N, size, size, 3) RGB; clips/<id>.json row + trace",
    })
    records, dup_rows = _dedupe(spec.records)
    dup_rows += [ClipRow(rec.clip_id, rec.label, rec.subject, rec.source, status="failed", reason=reason)
                 for rec, reason in spec.failures]
    si, sn = shard
    mine = [r for k, r in enumerate(records) if k % sn == si]
    done = cache.finished()
    todo = [r for r in mine if r.clip_id not in done or (retry_failed and done[r.clip_id].status != "ok")]
    bar = progress_bar(len(todo), f"prepare {spec.name}", unit="clip", enabled=progress)
    decoded = _run_jobs([(r, str(cache.root)) for r in todo], settings, workers, bar, on_clip, ray)
    bar.close()
    rows = list(cache.finished().values()) + dup_rows
    ok, failed = cache.write_index(rows)
    note = ""
    try:
        splits = make_splits(spec.name, rows, spec.official, k=folds, seed=seed, val_fraction=val_fraction,
                             grouped=spec.grouped, default=spec.default_protocol)
        atomic_write_json(cache.root / "splits.json", splits)
    except DatasetError as exc:
        note = str(exc)
    return PrepareSummary(len(records), len(todo), len(mine) - len(todo), ok, failed,
                          time.perf_counter() - start, decoded, str(cache.root), note)
