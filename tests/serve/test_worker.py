"""`dfer serve` you can leave running: real worker processes killed with SIGKILL, poison jobs, deadlines,
memory limits, cancellation, and the disk kept bounded (retention, orphan sweeps, free space)."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving import submit, wait_done

from dfer.serve import JobStore, ModelSpec, ServeConfig, create_app
from synthetic import write_face_video


def _app(ckpt, data, logs, **kw):
    return create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(Path(data), **kw), log=logs.append)


def _wait(predicate, timeout=60.0, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _worker_on(c, job_id):
    """The pid of the worker running `job_id`, or None."""
    return next((w["pid"] for w in c.get("/healthz").json()["workers"] if w["job"] == job_id), None)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_face_video(tmp_path_factory.mktemp("long") / "long.mp4", n=600, size=(160, 120))  # seconds of work


def test_poison_job_fails_after_max_attempts_and_never_runs_ahead_of_others(ckpt, video, long_video, tmp_path):
    logs = []
    with TestClient(_app(ckpt, tmp_path / "srv", logs), base_url="http://127.0.0.1") as c:
        poison = submit(c, long_video).json()["id"]
        pid = _wait(lambda: _worker_on(c, poison), what="the poison job to run")
        other = submit(c, video).json()["id"]  # queued after the poison job: it must not wait behind its rerun
        os.kill(pid, signal.SIGKILL)  # as a crash in native decoding code would
        assert wait_done(c.get, other)["status"] == "done"
        pid = _wait(lambda: _worker_on(c, poison), what="the poison job's second run")
        os.kill(pid, signal.SIGKILL)
        job = wait_done(c.get, poison)
        assert job["status"] == "failed"
        assert job["error"] == "the worker died 2 times on this video (last: killed by signal 9 (SIGKILL))"
        running = [json.loads(m)["id"] for m in logs if m.startswith("{") and '"running"' in m and '"job"' in m]
        assert running == [poison, other, poison]  # the re-queued poison job went behind the new one
        assert not (tmp_path / "srv" / "uploads" / f"{poison}.video").exists()
        assert not list((tmp_path / "srv" / "jobs").glob(f".{poison}.partial"))
        _wait(lambda: c.get("/healthz").json()["workers"][0]["state"] == "idle", what="a fresh worker")
        assert wait_done(c.get, submit(c, video).json()["id"])["status"] == "done"  # the service goes on


def test_deadline_memory_limit_and_cancel_each_end_a_job_and_the_worker_goes_on(ckpt, video, long_video, tmp_path):
    logs = []
    app = _app(ckpt, tmp_path / "srv", logs)
    pool = app.state.pool
    with TestClient(app, base_url="http://127.0.0.1") as c:
        # a deadline: the job fails with it, the worker is replaced
        pool.limits.job_timeout = 0.05  # past due at the supervisor's first look
        job = wait_done(c.get, submit(c, long_video).json()["id"])
        assert job["status"] == "failed" and job["error"] == "ran past its deadline of 0 s (--job-timeout)"
        pool.limits.job_timeout = 0.0
        # a memory limit, checked on the running job's worker (set under its RSS once the job runs)
        job_id = submit(c, long_video).json()["id"]
        _wait(lambda: _worker_on(c, job_id), what="the job to run")
        limit = pool.memory_limit
        pool.memory_limit = 1 << 20
        job = wait_done(c.get, job_id)
        pool.memory_limit = limit
        assert job["status"] == "failed" and "of memory, over its limit of 1.0 MB (--worker-memory)" in job["error"]
        # DELETE on a running job cancels it: the worker stops within seconds and keeps its model loaded
        job_id = submit(c, long_video).json()["id"]
        pid = _wait(lambda: _worker_on(c, job_id), what="the job to run")
        _wait(lambda: c.get(f"/v1/jobs/{job_id}").json()["progress"] > 0, what="progress")
        r = c.delete(f"/v1/jobs/{job_id}")
        assert r.status_code == 202 and r.json() == {"id": job_id, "status": "cancelled"}
        t0 = time.time()
        _wait(lambda: c.get("/healthz").json()["workers"][0]["job"] is None, timeout=10, what="the worker to stop")
        assert time.time() - t0 < 5
        assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        data = tmp_path / "srv"
        assert not (data / "jobs" / job_id).exists() and not (data / "jobs" / f".{job_id}.partial").exists()
        assert not (data / "uploads" / f"{job_id}.video").exists()
        assert c.get("/healthz").json()["workers"][0]["pid"] == pid  # stopped, not killed
        assert c.delete(f"/v1/jobs/{job_id}").json() == {"id": job_id, "deleted": True}
        assert wait_done(c.get, submit(c, video).json()["id"])["status"] == "done"
    restarts = [m for m in logs if "replaced" in m]
    assert len(restarts) == 2, restarts  # the deadline and the memory limit; the cancel needed no kill


def test_retention_sweep_and_free_space(ckpt, video, tmp_path):
    data = tmp_path / "srv"
    for sub in ("incoming", "uploads", "jobs"):
        (data / sub).mkdir(parents=True)
    store = JobStore(data / "jobs.sqlite")
    old = store.create("00000000-0000-4000-8000-000000000001", {}, "old.mp4")
    fresh = store.create("00000000-0000-4000-8000-000000000002", {}, "fresh.mp4")
    for job in (old, fresh):
        store.claim()
        store.finish(job.id)
        (data / "jobs" / job.id).mkdir()
    store._conn().execute("UPDATE jobs SET updated = updated - 8 * 86400 WHERE id = ?", (old.id,))
    orphans = [data / "incoming" / "x.part", data / "uploads" / "nojob.video", data / "uploads" / f"{fresh.id}.video"]
    for p in orphans:
        p.write_bytes(b"x")
    (data / "jobs" / ".gone.partial").mkdir()
    (data / "jobs" / "3f0c2a61-0000-4000-8000-000000000000").mkdir()  # results of no job
    logs = []
    app = create_app(ModelSpec(ckpt), ServeConfig(data), start_workers=False, log=logs.append)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert [j["id"] for j in c.get("/v1/jobs").json()["jobs"]] == [fresh.id]  # the old one expired
        assert sorted(p.name for p in (data / "jobs").iterdir()) == [fresh.id]
        assert not any(p.exists() for p in orphans)
        assert any("older than the retention of 7 days" in m for m in logs)
    full = create_app(ModelSpec(ckpt), ServeConfig(tmp_path / "full", min_free=1 << 60), start_workers=False,
                      log=lambda m: None)
    with TestClient(full, base_url="http://127.0.0.1") as c:
        r = submit(c, video)
        assert r.status_code == 507 and "under its minimum of" in r.json()["error"] and "(--min-free)" in r.json()["error"]
        assert r.headers["retry-after"] == "60"


def test_job_store_claims_cancels_and_recovers_without_races(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    a = store.create("a", {}, "a.mp4")
    store.create("b", {}, "b.mp4")
    assert store.claim().id == a.id
    assert store.requeue(a.id)  # its worker died: counted
    assert store.claim().id == "b"  # fewer attempts first
    assert store.cancel("b") == "running" and store.status("b") == "cancelled"
    assert not store.progress("b", 0.5) and not store.finish("b")  # the worker learns it was cancelled
    assert store.claim().id == a.id and store.get(a.id).attempts == 2
    again, failed = store.recover_interrupted(max_attempts=2)  # the server died on it twice
    assert (again, failed) == ([], [a.id])
    assert store.get(a.id).error == "the server stopped 2 times while running this video"
    assert store.cancel("nope") is None and not store.delete("nope")
