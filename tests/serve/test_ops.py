"""Running `dfer serve`: the upload probe in its own process with a deadline, health, metrics, logs."""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from serving import submit, wait_done, wait_for

from dfer.serve import ModelSpec, ServeConfig, create_app

HANG = [sys.executable, "-c", "import time; time.sleep(30)"]  # a probe that never finishes, as a bad file can


def _app(ckpt, data, logs=None, start_workers=True, **kw):
    return create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(Path(data), **kw), start_workers=start_workers,
                      log=(logs.append if logs is not None else (lambda m: None)))


def test_an_upload_that_hangs_the_probe_fails_while_the_api_answers(ckpt, video, tmp_path):
    with TestClient(_app(ckpt, tmp_path / "srv", start_workers=False, probe_command=HANG, probe_timeout=2.0),
                    base_url="http://127.0.0.1") as c:
        answer = {}
        upload = threading.Thread(target=lambda: answer.update(r=submit(c, video)))
        upload.start()
        time.sleep(0.5)
        health = c.get("/healthz")
        assert health.status_code == 200 and upload.is_alive()  # answered while the probe hangs
        upload.join(30)
        r = answer["r"]
        assert r.status_code == 415 and "could not be read within 2 s" in r.json()["error"]
        assert not list((tmp_path / "srv" / "incoming").iterdir())  # nothing left behind


@pytest.fixture(scope="module")
def served(ckpt, video, tmp_path_factory):
    """A service with two real workers that has run one job."""
    logs = []
    app = _app(ckpt, tmp_path_factory.mktemp("ops") / "srv", logs=logs, workers=2, access_log=True)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        job = wait_done(c.get, submit(c, video).json()["id"])
        yield c, app, logs, job


def _families(c):
    return {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}


def test_healthz_lists_every_worker_alive(served):
    c, _, _, job = served
    assert job["status"] == "done"
    health = c.get("/healthz").json()
    assert health["status"] == "ok" and [w["alive"] for w in health["workers"]] == [True, True]


def test_metrics_count_the_finished_job(served, video):
    families = _families(served[0])
    jobs = {s.labels["status"]: s.value for s in families["dfer_jobs"].samples}
    assert jobs["done"] == 1 and families["dfer_queue_depth"].samples[0].value == 0
    assert any(s.value == 1 for s in families["dfer_job_seconds"].samples if s.name.endswith("_count"))
    assert families["dfer_uploaded_bytes"].samples[0].value == video.stat().st_size


def test_request_metrics_are_labelled_by_route_template(served):
    routes = {s.labels.get("route") for s in _families(served[0])["dfer_request_seconds"].samples}
    assert "/v1/jobs/{job_id}" in routes


def _events(logs):
    return [json.loads(m) for m in logs if m.startswith("{")]


def test_every_request_is_logged_as_a_json_line(served):
    assert any(e["event"] == "request" and e["route"] == "/v1/jobs" and e["status"] == 202 for e in _events(served[2]))


def test_every_job_state_is_logged_as_a_json_line(served):
    assert [e["status"] for e in _events(served[2]) if e["event"] == "job"] == ["queued", "running", "done"]


def test_a_worker_killed_by_sigkill_is_replaced_within_seconds(served):
    c, _, logs, _ = served
    health = c.get("/healthz").json()
    victim = health["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        workers = c.get("/healthz").json()["workers"]
        return workers if workers[0]["pid"] != victim and workers[0]["state"] == "idle" else None

    now = wait_for(replaced, timeout=20, every=0.1, what="a fresh worker-0")
    assert now[0]["pid"] != victim and now[0]["state"] == "idle" and now[1]["pid"] == health["workers"][1]["pid"]
    assert _families(c)["dfer_worker_restarts"].samples[0].value == 1
    assert any("worker-0 killed by signal 9 (SIGKILL); replaced" in m for m in logs)


def test_healthz_is_503_when_no_worker_is_alive(served, monkeypatch):
    c, app, _, _ = served
    monkeypatch.setattr(app.state.pool, "states", lambda: [{"name": "w", "alive": False, "job": None}])
    dead = c.get("/healthz")
    assert dead.status_code == 503 and dead.json()["status"] == "no worker alive"


@pytest.mark.parametrize("limits, message", [
    ({"max_duration": 1.0}, "more than 1 s of video: over the limit of 1 s (--max-duration)"),
    ({"max_frame": (128, 128)}, "frames of 160x120 are over the limit of 128x128 (--max-frame)"),
    ({"max_fps": 24.0}, "25 frames per second is over the limit of 24 (--max-fps)"),
], ids=["duration", "frame", "fps"])
def test_an_upload_over_a_limit_is_refused_naming_the_limit(ckpt, video, tmp_path, limits, message):
    # the test video: 30 frames of 160x120 at 25 fps (1.2 s)
    with TestClient(_app(ckpt, tmp_path / "srv", start_workers=False, **limits), base_url="http://127.0.0.1") as c:
        r = submit(c, video)
    assert r.status_code == 413 and r.json()["error"] == f"talk.mp4: {message}"
    assert not list((tmp_path / "srv" / "incoming").iterdir())


def test_the_frame_limit_holds_in_either_orientation(ckpt, video, tmp_path):
    with TestClient(_app(ckpt, tmp_path / "ok", start_workers=False, max_frame=(120, 160)), base_url="http://127.0.0.1") as c:
        assert submit(c, video).status_code == 202
