"""`dfer serve`: the API with FastAPI's test client, a real server killed and restarted, and a real browser."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from serving import ARTIFACTS, free_port, submit, wait_done

from conftest import wait_healthy
from dfer.inference.people import available as people_available
from dfer.serve import ModelSpec, ServeConfig, create_app
from synthetic import write_face_video


def client_for(ckpt, data_dir, **kw):
    app = create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(Path(data_dir), **kw), log=lambda m: None)
    return TestClient(app, base_url="http://127.0.0.1")  # a loopback Host: other names are refused


def test_happy_path_artifacts_range_list_delete(ckpt, video, tmp_path):
    with client_for(ckpt, tmp_path / "srv") as c:
        assert c.get("/healthz").json()["status"] == "ok"
        model = c.get("/v1/model").json()
        assert model["class_names"] == ["right", "left", "still"] and model["clip"] == {"frames": 4, "size": 32}
        r = submit(c, video, stride=8, window=0.8, detect_every=2)
        assert r.status_code == 202 and r.json()["status"] == "queued"
        job_id = r.json()["id"]
        job = wait_done(c.get, job_id)
        assert job["status"] == "done" and job["progress"] == 1.0 and job["artifacts"] == ARTIFACTS
        s = job["summary"]
        assert s["source"] == "talk.mp4" and s["frames"] == 30 and s["settings"]["stride"] == 8
        assert s["settings"]["face"]["detect_every"] == 2 and len(s["tracks"]) == 1
        for name in ARTIFACTS:
            assert c.get(f"/v1/jobs/{job_id}/{name}").status_code == 200
        assert c.get(f"/v1/jobs/{job_id}/tracks.csv").text.startswith("frame,time_s,track_id,person_id,x0,y0,x1,y1,source")
        part = c.get(f"/v1/jobs/{job_id}/annotated.mp4", headers={"Range": "bytes=10-109"})
        assert part.status_code == 206 and len(part.content) == 100 and part.headers["content-range"].startswith("bytes 10-109/")
        assert [j["id"] for j in c.get("/v1/jobs").json()["jobs"]] == [job_id]
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 200
        assert c.get(f"/v1/jobs/{job_id}").status_code == 404
        assert not (tmp_path / "srv" / "jobs" / job_id).exists() and not list((tmp_path / "srv" / "uploads").iterdir())


def test_every_error_is_json_with_the_right_status(ckpt, video, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.mp4").write_text("this is not a video\n" * 50)
    (bad / "empty.mp4").write_bytes(b"")
    with client_for(ckpt, tmp_path / "srv", max_upload_mb=0.02) as c:
        cases = [
            (submit(c, video, stride="abc"), 400, "stride must be a number"),
            (submit(c, video, stride=-5), 400, "stride must be between"),
            (submit(c, video, window=0), 400, "window must be between"),
            (c.post("/v1/jobs", data={"stride": "3"}), 400, "multipart"),
            (c.post("/v1/jobs", files={"other": ("x.mp4", b"123")}), 400, "unexpected file field 'other'"),
            (c.post("/v1/jobs", data={"stride": "3"}, files={"x": (None, b"1")}), 400, "no file field named 'video'"),
            (submit(c, bad / "notes.mp4"), 415, "notes.mp4: not a readable video"),
            (submit(c, bad / "empty.mp4"), 415, "empty"),
            (c.post("/v1/jobs", files={"video": ("big.mp4", b"\0" * 40_000)}), 413, "larger than the limit"),
            (c.get("/v1/jobs/3f0c2a61-0000-4000-8000-000000000000"), 404, "no job"),
            (c.get("/v1/jobs/not-a-uuid"), 404, "no job"),
            (c.get("/v1/jobs/..%2F..%2Fjobs.sqlite"), 404, ""),
            (c.get("/v1/nothing"), 404, ""),
        ]
        for r, status, text in cases:
            assert r.status_code == status, (r.status_code, r.text)
            assert text in r.json()["error"]
        assert c.get("/v1/jobs").json()["jobs"] == []  # nothing bad was accepted
        assert not list((tmp_path / "srv" / "uploads").iterdir()) and not list((tmp_path / "srv" / "incoming").iterdir())


def test_artifact_names_are_fixed_and_uploads_get_server_names(ckpt, video, tmp_path):
    with client_for(ckpt, tmp_path / "srv", keep_uploads=True) as c:
        with open(video, "rb") as f:
            r = c.post("/v1/jobs", files={"video": ("../../../etc/evil name.mp4", f, "video/mp4")})
        job_id = r.json()["id"]
        job = wait_done(c.get, job_id)
        assert job["filename"] == "evil name.mp4"
        assert [p.name for p in (tmp_path / "srv" / "uploads").iterdir()] == [f"{job_id}.video"]
        for name in ["jobs.sqlite", "..%2Fjobs.sqlite", "%2e%2e", "annotated.mp4.bak", "%2e%2e%2f%2e%2e%2fjobs.sqlite"]:
            r = c.get(f"/v1/jobs/{job_id}/{name}")
            assert r.status_code == 404, name


def _app_without_workers(ckpt, data_dir, **kw):
    return create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(data_dir, **kw), start_workers=False, log=lambda m: None)


def test_the_token_guards_every_route_but_health(ckpt, video, tmp_path):
    with TestClient(_app_without_workers(ckpt, tmp_path / "srv", token="s3cret"), base_url="http://127.0.0.1") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/model").status_code == 401
        assert c.get("/v1/jobs", headers={"Authorization": "Bearer nope"}).json()["error"].startswith("missing or wrong token")
        good = {"Authorization": "Bearer s3cret"}
        loading = c.get("/v1/model", headers=good)  # no worker has loaded the model here
        assert loading.status_code == 503 and loading.headers["retry-after"] == "5"
        assert c.get("/v1/jobs", headers=good).status_code == 200
        assert c.get("/v1/jobs?token=s3cret").status_code == 400  # never in a URL: the page uses signed links
        assert submit(c, video).status_code == 401
        assert submit(c, video, headers=good).status_code == 202


def test_a_full_queue_answers_503_with_retry_after(ckpt, video, tmp_path):
    with TestClient(_app_without_workers(ckpt, tmp_path / "srv", max_queue=1), base_url="http://127.0.0.1") as c:
        assert submit(c, video).status_code == 202
        full = submit(c, video)  # no workers run here, so the first job still waits
        assert full.status_code == 503 and "queue is full" in full.json()["error"] and full.headers["retry-after"] == "30"


def _start_server(ckpt, data_dir, port):
    cmd = [sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir", str(data_dir),
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc)
    return proc, base


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_server_killed_mid_job_restarts_and_finishes_every_job(ckpt, tmp_path):
    long_video = write_face_video(tmp_path / "long.mp4", n=75, size=(160, 120))
    port = free_port()
    proc, base = _start_server(ckpt, tmp_path / "srv", port)
    try:
        ids = []
        for _ in range(2):
            with open(long_video, "rb") as f:
                r = httpx.post(base + "/v1/jobs", files={"video": ("long.mp4", f, "video/mp4")}, timeout=30)
            assert r.status_code == 202
            ids.append(r.json()["id"])
        for _ in range(300):  # kill while the first job is running
            if httpx.get(f"{base}/v1/jobs/{ids[0]}").json()["status"] == "running":
                break
            time.sleep(0.05)
        workers = [w["pid"] for w in httpx.get(base + "/healthz").json()["workers"]]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for _ in range(100):  # the worker processes die with the server: none goes on running a job
        if not any(_running(pid) for pid in workers):
            break
        time.sleep(0.05)
    assert not any(_running(pid) for pid in workers)
    proc, base = _start_server(ckpt, tmp_path / "srv", port)
    try:
        for job_id in ids:
            job = wait_done(lambda p: httpx.get(base + p, timeout=10), job_id)
            assert job["status"] == "done", job
            assert job["summary"]["frames"] == 75
            for name in ARTIFACTS:
                assert httpx.get(f"{base}/v1/jobs/{job_id}/{name}").status_code == 200
        assert not list((tmp_path / "srv" / "jobs").glob(".*.partial"))
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean stop (uvicorn re-raises the signal once shut down)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    out = proc.stdout.read().decode()
    assert "workers stopped" in out and "Traceback" not in out


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def _poll(page, expression: str, timeout: float = 30.0) -> None:
    t0 = time.time()
    while not page.evaluate(expression):
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)


def test_web_page_in_a_real_browser(ckpt, video, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    port = free_port()
    proc, base = _start_server(ckpt, tmp_path / "srv", port)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync"])
            page = browser.new_page()
            console = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(base + "/")
            page.set_input_files("#file", str(video))
            page.wait_for_selector("#result", state="visible", timeout=90_000)
            # polled from here: wait_for_function evaluates strings in the page, which the CSP forbids (no eval)
            _poll(page, "document.getElementById('video').readyState >= 2")
            page.evaluate("document.getElementById('video').play()")
            _poll(page, "document.getElementById('video').currentTime > 0.3")
            src = page.evaluate("document.getElementById('video').src")
            assert "sig=" in src and "token" not in src  # played through a signed link
            assert page.evaluate("current.classes") == ["right", "left", "still"]
            assert "#0" in page.inner_text("#faces")
            assert page.locator("#episodes tbody tr").count() >= 1  # the expression episodes are listed
            links = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.textContent)")
            assert links == ARTIFACTS
            if people_available():  # each person: a face from people.jpg and the shares as a bar
                face = page.eval_on_selector("#people .face", "e => e.style.backgroundImage")
                assert "people.jpg" in face and "sig=" in face
                assert page.locator("#people .shares span").count() >= 1
            box = page.locator("#timeline").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)  # hover shows the values
            tip = page.inner_text("#tip")
            assert "face #0" in tip and "right" in tip and "%" in tip
            assert not [m for m in console if "Content Security Policy" in m], console
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert os.path.isdir(tmp_path / "srv" / "jobs")
    assert json.loads(next((tmp_path / "srv" / "jobs").glob("*/summary.json")).read_text())["source"] == "talk.mp4"


def test_explain_jobs_episodes_calibration_and_a_dollar_in_the_name(ckpt, video, tmp_path):
    weird = tmp_path / "smile $x^2$ take.mp4"  # drawn as a title: text, never parsed as math
    shutil.copy(video, weird)
    with client_for(ckpt, tmp_path / "srv", explain_checkpoint=ckpt) as client:
        r = submit(client, weird, explain="true", min_confidence="0.2")
        assert r.status_code == 202, r.text
        job = wait_done(client.get, r.json()["id"])
        assert job["status"] == "done", job
        assert "explain.mp4" in job["artifacts"] and "episodes.csv" in job["artifacts"]
        s = job["summary"]
        assert s["source"] == weird.name and s["episodes"] and s["settings"]["min_confidence"] == 0.2
        assert s["temperature"] == s["settings"]["model"]["temperature"]
        ep = client.get(f"/v1/jobs/{job['id']}/episodes.csv").text.splitlines()
        assert ep[0] == "track_id,person_id,start_s,end_s,label,mean_probability,windows" and len(ep) == 1 + len(s["episodes"])
        assert client.get(f"/v1/jobs/{job['id']}/explain.mp4").headers["content-type"] == "video/mp4"
        assert submit(client, video, explain="maybe").json()["error"] == "explain must be true or false, got 'maybe'"
        assert client.get("/v1/model").json()["model_info"]["temperature"] > 0
    with client_for(ckpt, tmp_path / "srv2") as client:  # an exported model cannot explain
        r = submit(client, video, explain="true")
        assert r.status_code == 400 and "needs the server to run a dfer checkpoint" in r.json()["error"]
