"""Where `dfer serve` keeps files, and keeping that bounded: retention, orphan sweeps, free space.

    DATA/jobs.sqlite              the job database
    DATA/incoming/<id>.part       an upload while it streams in and is probed
    DATA/uploads/<id>.video       an accepted upload, until its job ends (deleted then unless --keep-uploads)
    DATA/jobs/.<id>.partial/      a running job's outputs (renamed when complete)
    DATA/jobs/<id>/               a finished job's artifacts, until --retention expires them

Every name is server-made from the job id; a client's file name never becomes a path.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

PART_MAX_AGE = 3600.0  # an incoming part older than this has no request behind it any more


class DataDir:
    def __init__(self, root: str | Path, database: Path | None = None) -> None:
        self.root = Path(root)
        self._database = database  # elsewhere when ROOT is a network folder (SQLite needs a local disk)
        for sub in ("uploads", "jobs", "incoming"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def database(self) -> Path:
        return self._database or self.root / "jobs.sqlite"

    def incoming(self, job_id: str) -> Path:
        return self.root / "incoming" / f"{job_id}.part"

    def upload(self, job_id: str) -> Path:
        return self.root / "uploads" / f"{job_id}.video"

    def result(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def partial(self, job_id: str) -> Path:
        return self.root / "jobs" / f".{job_id}.partial"

    def remove_outputs(self, job_id: str) -> None:
        shutil.rmtree(self.partial(job_id), ignore_errors=True)
        shutil.rmtree(self.result(job_id), ignore_errors=True)

    def remove_all(self, job_id: str) -> None:
        self.remove_outputs(job_id)
        self.upload(job_id).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def sweep(self, jobs: dict[str, str], *, keep_uploads: bool, at_start: bool) -> list[str]:
        """Remove what no job owns: incoming parts (all at start-up, else those older than an hour),
        partial folders of jobs that are not running, result folders and uploads of unknown jobs,
        and uploads of finished jobs unless `keep_uploads`. `jobs` maps id -> status. Returns what went."""
        gone: list[str] = []
        now = time.time()
        for part in (self.root / "incoming").glob("*.part"):
            if at_start or now - _mtime(part) > PART_MAX_AGE:
                part.unlink(missing_ok=True)
                gone.append(f"incoming/{part.name}")
        for entry in (self.root / "jobs").iterdir():
            job_id = entry.name[1:-len(".partial")] if entry.name.endswith(".partial") else entry.name
            keep = jobs.get(job_id) == "running" if entry.name.endswith(".partial") else job_id in jobs
            if not keep:
                shutil.rmtree(entry, ignore_errors=True)
                gone.append(f"jobs/{entry.name}")
        for upload in (self.root / "uploads").glob("*.video"):
            status = jobs.get(upload.stem)
            if status is None or (status in ("done", "failed", "cancelled") and not keep_uploads):
                upload.unlink(missing_ok=True)
                gone.append(f"uploads/{upload.name}")
        return gone

    def expire(self, ids: Iterable[str], delete_row: Callable[[str], bool]) -> list[str]:
        """Finished jobs past their retention: the row first (the API stops listing it), then its files."""
        gone = []
        for job_id in ids:
            if delete_row(job_id):
                self.remove_all(job_id)
                gone.append(job_id)
        return gone


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def parse_bytes(text: str | int | float) -> int:
    """'4G', '512M', '1.5GB', '800000' -> bytes (powers of 1024)."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if s and s[-1] in units:
            return int(float(s[:-1]) * units[s[-1]])
        return int(float(s))
    except ValueError:
        raise ValueError(f"not a size: {text!r} (write e.g. 4G, 512M or a number of bytes)") from None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
