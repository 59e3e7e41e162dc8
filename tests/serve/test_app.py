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
from serving import ARTIFACTS, CHROMIUM, free_port, poll_page, submit, wait_done

from conftest import wait_healthy
from dfer.inference.colours import class_colours
from dfer.inference.people import available as people_available
from dfer.serve import ModelSpec, ServeConfig, create_app
from synthetic import write_face_video


def client_for(ckpt, data_dir, **kw):
    app = create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(Path(data_dir), **kw), log=lambda m: None)
    return TestClient(app, base_url="http://127.0.0.1")  # a loopback Host: other names are refused


@pytest.fixture(scope="module")
def service(ckpt, tmp_path_factory):
    """A service with one real worker that can also explain (it runs the dfer checkpoint)."""
    data = tmp_path_factory.mktemp("app") / "srv"
    with client_for(ckpt, data, explain_checkpoint=ckpt) as c:
        yield c, data


@pytest.fixture(scope="module")
def done(service, video):
    c, _ = service
    r = submit(c, video, stride=8, window=0.8, detect_every=2)
    return r, wait_done(c.get, r.json()["id"])


def test_the_model_route_describes_the_model(service):
    c, _ = service
    assert c.get("/healthz").json()["status"] == "ok"
    model = c.get("/v1/model").json()
    assert model["class_names"] == ["right", "left", "still"] and model["clip"] == {"frames": 4, "size": 32}


def test_an_upload_is_queued_then_done_with_every_artifact(done):
    r, job = done
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert job["status"] == "done" and job["progress"] == 1.0 and job["artifacts"] == ARTIFACTS


def test_the_summary_keeps_the_settings_sent_with_the_upload(done):
    s = done[1]["summary"]
    assert s["source"] == "talk.mp4" and s["frames"] == 30 and s["settings"]["stride"] == 8
    assert s["settings"]["face"]["detect_every"] == 2 and len(s["tracks"]) == 1


def test_every_artifact_can_be_fetched(service, done):
    c, job_id = service[0], done[1]["id"]
    for name in ARTIFACTS:
        assert c.get(f"/v1/jobs/{job_id}/{name}").status_code == 200
    assert c.get(f"/v1/jobs/{job_id}/tracks.csv").text.startswith("frame,time_s,track_id,person_id,x0,y0,x1,y1,source")


def test_an_artifact_answers_a_range_request(service, done):
    part = service[0].get(f"/v1/jobs/{done[1]['id']}/annotated.mp4", headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and len(part.content) == 100 and part.headers["content-range"].startswith("bytes 10-109/")


def test_the_job_list_holds_the_job(service, done):
    assert done[1]["id"] in [j["id"] for j in service[0].get("/v1/jobs").json()["jobs"]]


def test_a_deleted_job_is_gone_with_its_files(service, video):
    c, data = service
    job_id = submit(c, video).json()["id"]
    wait_done(c.get, job_id)
    assert c.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert c.get(f"/v1/jobs/{job_id}").status_code == 404
    assert not (data / "jobs" / job_id).exists() and not (data / "uploads" / f"{job_id}.video").exists()


@pytest.fixture(scope="module")
def strict(ckpt, tmp_path_factory):
    """A service without workers and a 20 kB upload limit, and files no video decoder reads."""
    tmp = tmp_path_factory.mktemp("strict")
    bad = tmp / "bad"
    bad.mkdir()
    (bad / "notes.mp4").write_text("this is not a video\n" * 50)
    (bad / "empty.mp4").write_bytes(b"")
    with TestClient(_app_without_workers(ckpt, tmp / "srv", max_upload_mb=0.02), base_url="http://127.0.0.1") as c:
        yield c, bad, tmp / "srv"


ERRORS = [
    (lambda c, v, bad: submit(c, v, stride="abc"), 400, "stride must be a number"),
    (lambda c, v, bad: submit(c, v, stride=-5), 400, "stride must be between"),
    (lambda c, v, bad: submit(c, v, window=0), 400, "window must be between"),
    (lambda c, v, bad: c.post("/v1/jobs", data={"stride": "3"}), 400, "multipart"),
    (lambda c, v, bad: c.post("/v1/jobs", files={"other": ("x.mp4", b"123")}), 400, "unexpected file field 'other'"),
    (lambda c, v, bad: c.post("/v1/jobs", data={"stride": "3"}, files={"x": (None, b"1")}), 400,
     "no file field named 'video'"),
    (lambda c, v, bad: submit(c, bad / "notes.mp4"), 415, "notes.mp4: not a readable video"),
    (lambda c, v, bad: submit(c, bad / "empty.mp4"), 415, "empty"),
    (lambda c, v, bad: c.post("/v1/jobs", files={"video": ("big.mp4", b"\0" * 40_000)}), 413, "larger than the limit"),
    (lambda c, v, bad: c.get("/v1/jobs/3f0c2a61-0000-4000-8000-000000000000"), 404, "no job"),
    (lambda c, v, bad: c.get("/v1/jobs/not-a-uuid"), 404, "no job"),
    (lambda c, v, bad: c.get("/v1/jobs/..%2F..%2Fjobs.sqlite"), 404, ""),
    (lambda c, v, bad: c.get("/v1/nothing"), 404, ""),
]


@pytest.mark.parametrize("request_, status, text", ERRORS, ids=[
    "stride-not-a-number", "stride-negative", "window-zero", "not-multipart", "unexpected-field", "no-video-field",
    "not-a-video", "empty-file", "too-large", "unknown-job", "not-a-job-id", "encoded-path", "unknown-route"])
def test_every_error_is_json_with_the_right_status(strict, video, request_, status, text):
    c, bad, _ = strict
    r = request_(c, video, bad)
    assert r.status_code == status, (r.status_code, r.text)
    assert text in r.json()["error"]


def test_nothing_refused_is_kept(strict, video):
    c, bad, data = strict
    for request_, _, _ in ERRORS:
        request_(c, video, bad)
    assert c.get("/v1/jobs").json()["jobs"] == []
    assert not list((data / "uploads").iterdir()) and not list((data / "incoming").iterdir())


@pytest.fixture(scope="module")
def evil_upload(ckpt, video, tmp_path_factory):
    data = tmp_path_factory.mktemp("names") / "srv"
    with client_for(ckpt, data, keep_uploads=True) as c:
        with open(video, "rb") as f:
            r = c.post("/v1/jobs", files={"video": ("../../../etc/evil name.mp4", f, "video/mp4")})
        yield c, wait_done(c.get, r.json()["id"]), data


def test_an_uploads_name_is_reduced_to_its_base_name(evil_upload):
    assert evil_upload[1]["filename"] == "evil name.mp4"


def test_an_upload_is_stored_under_a_server_made_name(evil_upload):
    _, job, data = evil_upload
    assert [p.name for p in (data / "uploads").iterdir()] == [f"{job['id']}.video"]


@pytest.mark.parametrize("name", ["jobs.sqlite", "..%2Fjobs.sqlite", "%2e%2e", "annotated.mp4.bak",
                                  "%2e%2e%2f%2e%2e%2fjobs.sqlite"])
def test_only_the_fixed_artifact_names_are_served(evil_upload, name):
    c, job, _ = evil_upload
    assert c.get(f"/v1/jobs/{job['id']}/{name}").status_code == 404


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


def test_every_job_survives_a_server_killed_mid_job(ckpt, tmp_path):
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


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
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
            poll_page(page, "document.getElementById('video').readyState >= 2")
            page.evaluate("document.getElementById('video').play()")
            poll_page(page, "document.getElementById('video').currentTime > 0.3")
            src = page.evaluate("document.getElementById('video').src")
            assert "sig=" in src and "token" not in src  # played through a signed link
            assert page.evaluate("current.classes") == ["right", "left", "still"]
            # one timeline row per person, as timeline.png draws it, in the colours of its table
            summary = httpx.get(base + "/v1/jobs").json()["jobs"][0]
            people = httpx.get(f"{base}/v1/jobs/{summary['id']}").json()["summary"]["people"]
            rows = page.evaluate("current.order")
            assert rows == ([p["person_id"] for p in people] or rows) and len(rows) == max(1, len(people))
            assert page.evaluate("CLASS_COLOURS") == class_colours(["right", "left", "still"])
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
            assert "(#0)" in tip and "right" in tip and "%" in tip
            assert not [m for m in console if "Content Security Policy" in m], console
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert os.path.isdir(tmp_path / "srv" / "jobs")
    assert json.loads(next((tmp_path / "srv" / "jobs").glob("*/summary.json")).read_text())["source"] == "talk.mp4"


@pytest.fixture(scope="module")
def explained(service, video, tmp_path_factory):
    weird = tmp_path_factory.mktemp("weird") / "smile $x^2$ take.mp4"  # drawn as a title: text, never math
    shutil.copy(video, weird)
    c, _ = service
    r = submit(c, weird, explain="true", min_confidence="0.2")
    assert r.status_code == 202, r.text
    job = wait_done(c.get, r.json()["id"])
    assert job["status"] == "done", job
    return job, weird.name


def test_an_explain_job_adds_the_explanation_video(service, explained):
    job = explained[0]
    assert "explain.mp4" in job["artifacts"]
    assert service[0].get(f"/v1/jobs/{job['id']}/explain.mp4").headers["content-type"] == "video/mp4"


def test_a_dollar_in_the_name_is_kept_as_text(explained):
    job, name = explained
    assert job["summary"]["source"] == name


def test_a_job_has_its_episodes_under_its_min_confidence(service, explained):
    job = explained[0]
    s = job["summary"]
    assert "episodes.csv" in job["artifacts"] and s["episodes"] and s["settings"]["min_confidence"] == 0.2
    ep = service[0].get(f"/v1/jobs/{job['id']}/episodes.csv").text.splitlines()
    assert ep[0] == "track_id,person_id,start_s,end_s,label,mean_probability,windows" and len(ep) == 1 + len(s["episodes"])


def test_the_calibration_temperature_is_reported_everywhere(service, explained):
    s = explained[0]["summary"]
    assert s["temperature"] == s["settings"]["model"]["temperature"]
    assert service[0].get("/v1/model").json()["model_info"]["temperature"] > 0


def test_explain_must_be_true_or_false(service, video):
    assert submit(service[0], video, explain="maybe").json()["error"] == "explain must be true or false, got 'maybe'"


def test_a_server_without_a_dfer_checkpoint_to_explain_with_refuses_explain(ckpt, video, tmp_path):
    with TestClient(_app_without_workers(ckpt, tmp_path / "srv"), base_url="http://127.0.0.1") as client:
        r = submit(client, video, explain="true")
    assert r.status_code == 400 and "needs the server to run a dfer checkpoint" in r.json()["error"]
