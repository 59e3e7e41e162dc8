"""dfer.serve.disk: retention, orphan sweeps and the free-space floor, at the service's start."""

import pytest
from fastapi.testclient import TestClient
from serving import submit

from dfer.serve import JobStore, ModelSpec, ServeConfig, create_app
from dfer.serve.params import QueuedParams

OLD, FRESH = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


@pytest.fixture
def swept(ckpt, tmp_path):
    """A data folder with a job past retention, a fresh one and orphans of every kind; then the service starts."""
    data = tmp_path / "srv"
    for sub in ("incoming", "uploads", "jobs"):
        (data / sub).mkdir(parents=True)
    store = JobStore(data / "jobs.sqlite")
    for job_id in (OLD, FRESH):
        store.create(job_id, QueuedParams(), "v.mp4")
        store.claim()
        store.finish(job_id)
        (data / "jobs" / job_id).mkdir()
    store._conn().execute("UPDATE jobs SET updated = updated - 8 * 86400 WHERE id = ?", (OLD,))
    orphans = [data / "incoming" / "x.part", data / "uploads" / "nojob.video", data / "uploads" / f"{FRESH}.video"]
    for p in orphans:
        p.write_bytes(b"x")
    (data / "jobs" / ".gone.partial").mkdir()
    (data / "jobs" / "3f0c2a61-0000-4000-8000-000000000000").mkdir()  # results of no job
    logs = []
    app = create_app(ModelSpec(ckpt), ServeConfig(data), start_workers=False, log=logs.append)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c, data, orphans, logs


def test_a_job_past_retention_is_gone_with_its_results(swept):
    c, data, _, logs = swept
    assert [j["id"] for j in c.get("/v1/jobs").json()["jobs"]] == [FRESH]
    assert sorted(p.name for p in (data / "jobs").iterdir()) == [FRESH]
    assert any("older than the retention of 7 days" in m for m in logs)


def test_orphan_files_are_swept(swept):
    assert not any(p.exists() for p in swept[2])


def test_an_upload_under_the_free_space_floor_is_a_507_with_retry_after(ckpt, video, tmp_path):
    full = create_app(ModelSpec(ckpt), ServeConfig(tmp_path / "full", min_free=1 << 60), start_workers=False,
                      log=lambda m: None)
    with TestClient(full, base_url="http://127.0.0.1") as c:
        r = submit(c, video)
    assert r.status_code == 507 and "under its minimum of" in r.json()["error"] and "(--min-free)" in r.json()["error"]
    assert r.headers["retry-after"] == "60"
