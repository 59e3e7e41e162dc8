"""Where `dfer serve` keeps files, and keeping that bounded: retention, orphan sweeps, free space.

    DATA/jobs.sqlite              the job database
    DATA/incoming/<id>.part       an upload while it streams in and is probed
    DATA/incoming/<id>.live.mp4   a live session's saved frames (written by its worker; a job when it ends)
    DATA/uploads/<id>.video       an accepted upload, until its job ends (deleted then unless --keep-uploads)
    DATA/jobs/.<id>.partial/      a running job's outputs (renamed when complete)
    DATA/jobs/<id>/               a finished job's artifacts, until --retention expires them

Every name is server-made from the job id; a client's file name never becomes a path. The folders
are 0700 and the service's processes write with umask 077: uploads and results hold people's faces
and are readable by the service's user only. Artifacts are opened without following symlinks and
only inside their job's folder (`open_artifact`): whoever can write a shared folder cannot make the
server send its own files. With --shared-dir, each service instance keeps its files in a sub-folder
of its own (`instance_root`) and sweeps only that.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from dfer.serve.jobs import FINAL, JobStatus

PART_MAX_AGE = 3600.0  # an incoming part older than this has no request behind it any more
YOUNG = 600.0  # an upload this recent may belong to a request that is writing its job row right now
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class ArtifactMissing(Exception):
    """No such regular file in the job's folder (or something other than one: a link, a folder)."""


def private_dir(path: Path) -> Path:
    """`path` made if needed, 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def instance_root(shared: Path, data_dir: Path) -> Path:
    """This service instance's own sub-folder of a shared folder, named by an id kept in its data folder
    (the same across restarts; two instances on one share never sweep each other's files)."""
    marker = private_dir(Path(data_dir)) / "instance-id"
    if not marker.exists():
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(uuid.uuid4().hex)
        tmp.replace(marker)
    return Path(shared) / f"instance-{marker.read_text().strip()}"


class DataDir:
    def __init__(self, root: str | Path, database: Path | None = None) -> None:
        self.root = Path(root)
        self._database = database  # elsewhere when ROOT is a network folder (SQLite needs a local disk)
        private_dir(self.root)
        for sub in ("uploads", "jobs", "incoming"):
            private_dir(self.root / sub)

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

    def open_artifact(self, job_id: str, name: str) -> int:
        """A read-only descriptor of jobs/<job_id>/<name>, opened without following a symlink at either
        step (the job folder or the file) and only if it is a regular file; ArtifactMissing otherwise."""
        jobs = os.open(self.root / "jobs", os.O_RDONLY | _DIRECTORY)
        try:
            folder = os.open(job_id, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=jobs)
        except OSError:
            raise ArtifactMissing(name) from None
        finally:
            os.close(jobs)
        try:
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=folder)
        except OSError:
            raise ArtifactMissing(name) from None
        finally:
            os.close(folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArtifactMissing(name)
        return fd

    def has_artifact(self, job_id: str, name: str) -> bool:
        """A regular file (not a link) named `name` in the job's folder (itself not a link)."""
        try:
            return (not stat.S_ISLNK(os.lstat(self.result(job_id)).st_mode)
                    and stat.S_ISREG(os.lstat(self.result(job_id) / name).st_mode))
        except OSError:
            return False

    def read_artifact(self, job_id: str, name: str) -> bytes:
        with os.fdopen(self.open_artifact(job_id, name), "rb") as f:
            return f.read()

    def remove_outputs(self, job_id: str) -> None:
        shutil.rmtree(self.partial(job_id), ignore_errors=True)
        shutil.rmtree(self.result(job_id), ignore_errors=True)

    def remove_all(self, job_id: str) -> None:
        self.remove_outputs(job_id)
        self.upload(job_id).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def sweep(self, jobs: dict[str, str], *, keep_uploads: bool, at_start: bool) -> list[str]:
        """Remove what no job owns: incoming files (uploads under way, live sessions' videos: all at
        start-up, else those unchanged for an hour),
        partial folders of jobs that are not running, result folders and uploads of unknown jobs,
        and uploads of finished jobs unless `keep_uploads`. `jobs` maps id -> status. Returns what went."""
        gone: list[str] = []
        now = time.time()
        for part in (self.root / "incoming").iterdir():
            if part.is_file() and (at_start or now - _mtime(part) > PART_MAX_AGE):
                part.unlink(missing_ok=True)
                gone.append(f"incoming/{part.name}")
        for entry in (self.root / "jobs").iterdir():
            job_id = entry.name[1:-len(".partial")] if entry.name.endswith(".partial") else entry.name
            keep = jobs.get(job_id) == JobStatus.RUNNING if entry.name.endswith(".partial") else job_id in jobs
            if entry.is_symlink():  # never made by dfer: removed, never followed
                entry.unlink(missing_ok=True)
                gone.append(f"jobs/{entry.name}")
            elif not keep:
                shutil.rmtree(entry, ignore_errors=True)
                gone.append(f"jobs/{entry.name}")
        for upload in (self.root / "uploads").glob("*.video"):
            status = jobs.get(upload.stem)
            unknown = status is None and (at_start or now - _mtime(upload) > YOUNG)  # its row may be on its way
            if unknown or (status in FINAL and not keep_uploads):
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


def publish(partial: Path, final: Path) -> None:
    """A job's finished outputs moved into place: `partial` renamed to `final` (a rerun after a crash
    replaces what the first run left), so a job never shows half its files."""
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
