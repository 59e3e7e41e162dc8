"""`dfer serve` you can leave running: real worker processes killed with SIGKILL, poison jobs, deadlines,
memory limits and cancellation, end to end."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving import submit, wait_done, wait_for

from dfer.serve import ModelSpec, ServeConfig, create_app
from synthetic import write_face_video


def _app(ckpt, data, logs, **kw):
    return create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(Path(data), **kw), log=logs.append)


def _worker_on(c, job_id):
    """The pid of the worker running `job_id`, or None."""
    return next((w["pid"] for w in c.get("/healthz").json()["workers"] if w["job"] == job_id), None)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_face_video(tmp_path_factory.mktemp("long") / "long.mp4", n=600, size=(160, 120))  # seconds of work


def test_a_poison_job_fails_after_max_attempts_behind_the_jobs_queued_meanwhile(ckpt, video, long_video, tmp_path):
    logs = []
    with TestClient(_app(ckpt, tmp_path / "srv", logs), base_url="http://127.0.0.1") as c:
        poison = submit(c, long_video).json()["id"]
        pid = wait_for(lambda: _worker_on(c, poison), what="the poison job to run")
        other = submit(c, video).json()["id"]  # queued after the poison job: it must not wait behind its rerun
        os.kill(pid, signal.SIGKILL)  # as a crash in native decoding code would
        assert wait_done(c.get, other)["status"] == "done"
        pid = wait_for(lambda: _worker_on(c, poison), what="the poison job's second run")
        os.kill(pid, signal.SIGKILL)
        job = wait_done(c.get, poison)
        assert job["status"] == "failed"
        assert job["error"] == "the worker died 2 times on this video (last: killed by signal 9 (SIGKILL))"
        running = [json.loads(m)["id"] for m in logs if m.startswith("{") and '"running"' in m and '"job"' in m]
        assert running == [poison, other, poison]  # the re-queued poison job went behind the new one
        assert not (tmp_path / "srv" / "uploads" / f"{poison}.video").exists()
        assert not list((tmp_path / "srv" / "jobs").glob(f".{poison}.partial"))
        wait_for(lambda: c.get("/healthz").json()["workers"][0]["state"] == "idle", what="a fresh worker")
        assert wait_done(c.get, submit(c, video).json()["id"])["status"] == "done"  # the service goes on


@pytest.fixture(scope="module")
def service(ckpt, tmp_path_factory):
    """One service with one real worker process, shared by the tests of the rules that end a job."""
    logs = []
    data = tmp_path_factory.mktemp("srv") / "srv"
    app = _app(ckpt, data, logs)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c, app.state.pool, logs, data


def _replaced(logs) -> int:
    return sum("replaced" in m for m in logs)


def test_a_deadline_ends_the_job_by_replacing_its_worker(service, long_video):
    c, pool, logs, _ = service
    before = _replaced(logs)
    pool.limits.job_timeout = 0.05  # past due at the supervisor's first look
    try:
        job = wait_done(c.get, submit(c, long_video).json()["id"])
    finally:
        pool.limits.job_timeout = 0.0
    assert job["status"] == "failed" and job["error"] == "ran past its deadline of 0 s (--job-timeout)"
    assert _replaced(logs) == before + 1


def test_a_memory_limit_ends_the_job_by_replacing_its_worker(service, long_video):
    """Checked on the running job's worker: the limit is set under its RSS once the job runs."""
    c, pool, logs, _ = service
    before = _replaced(logs)
    job_id = submit(c, long_video).json()["id"]
    wait_for(lambda: _worker_on(c, job_id), what="the job to run")
    limit = pool.memory_limit
    pool.memory_limit = 1 << 20
    try:
        job = wait_done(c.get, job_id)
    finally:
        pool.memory_limit = limit
    assert job["status"] == "failed" and "of memory, over its limit of 1.0 MB (--worker-memory)" in job["error"]
    assert _replaced(logs) == before + 1


def test_a_cancel_stops_the_running_job_within_seconds_without_a_kill(service, long_video):
    c, _, logs, data = service
    before = _replaced(logs)
    job_id = submit(c, long_video).json()["id"]
    pid = wait_for(lambda: _worker_on(c, job_id), what="the job to run")
    wait_for(lambda: c.get(f"/v1/jobs/{job_id}").json()["progress"] > 0, what="progress")
    r = c.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 202 and r.json() == {"id": job_id, "status": "cancelled"}
    t0 = time.time()
    wait_for(lambda: c.get("/healthz").json()["workers"][0]["job"] is None, timeout=10, what="the worker to stop")
    assert time.time() - t0 < 5
    assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    assert c.get("/healthz").json()["workers"][0]["pid"] == pid  # stopped, not killed: its model stays loaded
    assert _replaced(logs) == before


def test_a_cancelled_job_leaves_no_files(service, long_video):
    c, _, _, data = service
    job_id = submit(c, long_video).json()["id"]
    wait_for(lambda: _worker_on(c, job_id), what="the job to run")
    c.delete(f"/v1/jobs/{job_id}")
    wait_for(lambda: c.get("/healthz").json()["workers"][0]["job"] is None, timeout=10, what="the worker to stop")
    assert not (data / "jobs" / job_id).exists() and not (data / "jobs" / f".{job_id}.partial").exists()
    assert not (data / "uploads" / f"{job_id}.video").exists()
    assert c.delete(f"/v1/jobs/{job_id}").json() == {"id": job_id, "deleted": True}  # a second DELETE removes the row


def test_the_service_runs_the_next_job_after_a_job_was_ended(service, video):
    c = service[0]
    assert wait_done(c.get, submit(c, video).json()["id"])["status"] == "done"
