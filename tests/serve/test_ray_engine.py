"""`dfer serve --engine ray`: jobs on Ray actors of a local Ray instance, the upload through the object store
or a shared folder, the artifacts the local engine's; an actor killed mid-job is replaced."""

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving import ARTIFACTS, submit, wait_done

from dfer.scale import RayOptions
from dfer.serve import ModelSpec, ServeConfig, create_app
from synthetic import write_face_video

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield RayOptions(cpus_per_worker=1)
    ray.shutdown()


def _run(ckpt, video, data, logs=None, **kw):
    """One job through an app; its artifacts' bytes by name, and the job."""
    app = create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(Path(data), **kw),
                     log=logs.append if logs is not None else (lambda m: None))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        job = wait_done(c.get, submit(c, video, stride=8, window=0.8).json()["id"], timeout=180)
        assert job["status"] == "done", job
        return {n: c.get(f"/v1/jobs/{job['id']}/{n}").content for n in job["artifacts"]}, job


def test_ray_engine_gives_the_local_engines_artifacts(ckpt, video, local_ray, tmp_path):
    local, _ = _run(ckpt, video, tmp_path / "local")
    on_ray, job = _run(ckpt, video, tmp_path / "ray", engine="ray", ray=local_ray)
    assert job["artifacts"] == ARTIFACTS
    for name in ("predictions.csv", "tracks.csv", "episodes.csv", "people.csv"):  # the same people too
        assert on_ray[name] == local[name], name
    assert json.loads(on_ray["summary.json"])["tracks"] == json.loads(local["summary.json"])["tracks"]
    assert not list((tmp_path / "ray" / "uploads").iterdir())  # deleted once the job ended
    shared, _ = _run(ckpt, video, tmp_path / "db", engine="ray", ray=local_ray, shared_dir=tmp_path / "shared")
    assert shared["predictions.csv"] == local["predictions.csv"]
    assert (tmp_path / "db" / "jobs.sqlite").is_file() and not (tmp_path / "shared" / "jobs.sqlite").exists()
    own = list((tmp_path / "shared").glob("instance-*"))  # this service instance's part of the share
    assert len(own) == 1 and len(list((own[0] / "jobs").iterdir())) == 1  # the results where every node sees them


def test_a_killed_actors_job_runs_again_on_a_new_actor(ckpt, local_ray, tmp_path):
    long_video = write_face_video(tmp_path / "long.mp4", n=150, size=(160, 120))
    logs = []
    app = create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(tmp_path / "srv", engine="ray", ray=local_ray),
                     log=logs.append)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        job_id = submit(c, long_video).json()["id"]
        for _ in range(600):
            if c.get("/healthz").json()["workers"][0]["job"] == job_id:
                break
            time.sleep(0.05)
        ray.kill(app.state.pool.slots[0].handle.actor, no_restart=True)
        job = wait_done(c.get, job_id, timeout=180)
        assert job["status"] == "done" and job["summary"]["frames"] == 150
        assert any("worker-0 its Ray actor died" in m and "replaced" in m for m in logs), logs
