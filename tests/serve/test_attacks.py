"""The service as an attacker would run it: real servers on loopback, real requests, real files.

Two kinds of server: `live` is uvicorn in a thread with the service's own connection settings
(dfer.serve.server.uvicorn_config) over an app that queues jobs without running them (cheap: no
model is loaded); `served` is a real `dfer serve` process with a token file and worker processes,
for what needs finished jobs or the workers' environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from serving import free_port, wait_done, wait_for

import hostile
from conftest import wait_healthy
from dfer.cli import main
from dfer.serve import ModelSpec, ServeConfig, create_app
from dfer.serve.params import QueuedParams
from dfer.serve.probe import Limits, ProbeError, probe_upload
from dfer.serve.server import uvicorn_config
from synthetic import write_face_video

TOKEN = "attack-battery-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB = "3f0c2a61-0000-4000-8000-000000000000"


@contextlib.contextmanager
def live(tmp_path: Path, log=lambda m: None, **kw):
    """A real HTTP server on loopback (uvicorn in a thread, the service's settings); jobs only queue."""
    import uvicorn

    config = ServeConfig(tmp_path / "srv", **kw)
    app = create_app(ModelSpec(tmp_path / "model.pt"), config, start_workers=False, log=log)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, config, port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, tries=100)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(10)


def upload(base: str, path: Path, headers: dict | None = None, **fields) -> httpx.Response:
    with open(path, "rb") as f:
        return httpx.post(base + "/v1/jobs", files={"video": (path.name, f, "video/mp4")},
                          data={k: str(v) for k, v in fields.items()}, headers=headers or {}, timeout=60)


def leftovers(data: Path) -> list[str]:
    return sorted(p.name for sub in ("incoming", "uploads") for p in (data / sub).iterdir())


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_face_video(tmp_path_factory.mktemp("attack") / "talk.mp4", n=30, size=(160, 120))


@pytest.fixture(scope="module")
def served(ckpt, clip, tmp_path_factory):
    """A real `dfer serve` with its token in a file and DFER_TOKEN in its environment, and one finished job."""
    root = tmp_path_factory.mktemp("served")
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    env = {**os.environ, "DFER_TOKEN": "from-the-environment"}  # --token-file wins; DFER_TOKEN must not leak
    proc = subprocess.Popen([sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir",
                             str(root / "srv"), "--port", str(port), "--token-file", str(token_file),
                             "--max-frame", "320x240"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc)
    r = upload(base, clip, AUTH)
    job = wait_done(lambda path: httpx.get(base + path, headers=AUTH, timeout=30), r.json()["id"])
    assert job["status"] == "done", job
    yield base, job, root / "srv"
    proc.terminate()
    proc.wait(timeout=30)


# -- 1. signed links and /healthz ------------------------------------------------------------------
def test_an_empty_or_forged_signature_never_replaces_the_token(served):
    base, job, _ = served
    path = f"{base}/v1/jobs/{job['id']}/predictions.csv"
    assert httpx.get(path, headers=AUTH).status_code == 200
    for query in ("?sig=", "?sig=&expires=", "?expires=", "?sig=x&expires=99999999999", "?sig=&sig=&expires=1"):
        for headers in ({}, {"Range": "bytes=0-10"}):
            r = httpx.get(path + query, headers=headers)
            assert r.status_code == 401 and "predictions" not in r.text, (query, headers, r.text)
    valid = job["artifact_urls"]["predictions.csv"]
    assert httpx.get(base + valid).status_code == 200
    assert httpx.delete(base + valid.replace("/predictions.csv", "")).status_code == 401  # not a GET of an artifact
    assert httpx.get(f"{base}/v1/jobs?sig=x&expires=1").status_code == 401


def test_without_a_token_a_bad_link_is_forbidden(tmp_path):
    with live(tmp_path) as (base, _):
        r = httpx.get(f"{base}/v1/jobs/{JOB}/summary.json?sig=&expires=99999999999")
        assert r.status_code == 403 and "expired" in r.json()["error"]
        assert httpx.get(f"{base}/v1/jobs/{JOB}/summary.json?sig=").status_code == 403


def test_healthz_says_only_its_status_without_the_token(served):
    base, _, _ = served
    public = httpx.get(base + "/healthz").json()
    assert public == {"status": "ok"}
    full = httpx.get(base + "/healthz", headers=AUTH).json()
    assert full["workers"][0]["pid"] > 0 and "rss_mb" in full["workers"][0] and "queued" in full


# -- 2. metrics ------------------------------------------------------------------------------------
def test_strange_requests_add_no_metric_series(tmp_path):
    with live(tmp_path) as (base, _):
        with httpx.Client(base_url=base) as c:
            before = len(c.get("/metrics").text)
            for i in range(200):
                c.request(f"X{i:05d}", f"/nope/{i}")
            text = c.get("/metrics").text
        assert "X00042" not in text and "/nope" not in text
        assert 'method="OTHER",route="unmatched"' in text
        assert len(text) < before + 4000  # one new series, not two hundred


# -- 3. connections --------------------------------------------------------------------------------
def _closed(sock: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it is still open after `within` s."""
    sock.settimeout(within)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:  # closed while our unread bytes were in flight: closed all the same
        return data or b"RESET"
    return data


def _half_sent(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
        socks.append(s)
    return socks


def test_connections_over_the_limit_are_closed_at_once(tmp_path):
    with live(tmp_path, max_connections=12, header_timeout=5.0) as (base, _):
        socks = _half_sent(int(base.rsplit(":", 1)[1]), 20)
        time.sleep(0.5)  # well before the header deadline
        early = [_closed(s, 0.01) for s in socks]
        for s in socks:
            s.close()
        assert sum(a is not None for a in early) >= 8
        assert all(a in (b"RESET",) or a.startswith(b"HTTP/1.1 503") for a in early if a is not None)
        assert httpx.get(base + "/healthz").status_code == 200  # the server still serves


def test_a_half_sent_request_is_dropped_at_the_header_deadline(tmp_path):
    with live(tmp_path, header_timeout=1.0) as (base, _):
        socks = _half_sent(int(base.rsplit(":", 1)[1]), 3)
        answers = [_closed(s, 5.0) for s in socks]
        for s in socks:
            s.close()
        assert all(a is not None for a in answers), "a half-sent request was still held"
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers)
        assert httpx.get(base + "/healthz").status_code == 200


def test_a_stalled_upload_is_dropped_with_its_part_file(tmp_path, clip):
    with live(tmp_path, body_timeout=1.0) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        body = clip.read_bytes()
        head = (b"--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"talk.mp4\"\r\n"
                b"Content-Type: video/mp4\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  f"Content-Length: {len(head) + len(body) + 8}\r\n\r\n".encode() + head + body[:1000])
        time.sleep(0.3)
        assert len(list((tmp_path / "srv" / "incoming").iterdir())) == 1  # streaming straight in
        answer = _closed(s, 10.0)
        s.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer
        assert leftovers(tmp_path / "srv") == []


# -- 4. uploads ------------------------------------------------------------------------------------
def test_an_upload_is_written_once_into_the_data_folder(tmp_path, clip, monkeypatch):
    spool = tmp_path / "system-temp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    with live(tmp_path) as (base, _):
        r = upload(base, clip)
        assert r.status_code == 202
        assert list(spool.iterdir()) == []  # nothing buffered in the system temp folder
        stored = tmp_path / "srv" / "uploads" / f"{r.json()['id']}.video"
        assert stored.read_bytes() == clip.read_bytes()


def _declare(port: int, length: int, first_bytes: bytes = b"") -> socket.socket:
    """An upload that announces `length` bytes and sends only `first_bytes` of its body (for now)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode() + first_bytes)
    return sock


def test_concurrent_uploads_that_would_cross_min_free_get_507(tmp_path, clip):
    mb = 2**20
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    with live(tmp_path, min_free=free - 75 * mb) as (base, _):  # room for one 50 MB upload, not two
        port = int(base.rsplit(":", 1)[1])
        head = b"--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a.mp4\"\r\n\r\n"
        first = _declare(port, 50 * mb, head + b"\0" * 100)
        time.sleep(0.3)  # the first upload holds its reservation while it streams
        second = _declare(port, 50 * mb)
        answer = _closed(second, 10.0)
        second.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 507") and b"promised to uploads under way" in answer
        first.close()  # the client gives up: its reservation and its part file go
        # the server notices the closed connection on its next read (later on a busy machine)
        wait_for(lambda: not leftovers(tmp_path / "srv"), timeout=10, what="the abandoned upload to go")
        assert upload(base, clip).status_code == 202
        assert len(leftovers(tmp_path / "srv")) == 1


def test_the_queue_limit_holds_under_concurrent_uploads(tmp_path, clip):
    with live(tmp_path, max_queue=1) as (base, _):
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(upload(base, clip).status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == [202, 503, 503, 503]
        assert len(leftovers(tmp_path / "srv")) == 1  # the accepted one; the refused left nothing


def test_a_disk_full_while_saving_leaves_nothing(tmp_path, clip, monkeypatch):
    import errno

    import dfer.serve.upload as receiving

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(receiving, "_write_all", full)
    with live(tmp_path) as (base, _):
        r = upload(base, clip)
        assert r.status_code == 507 and "filled up" in r.json()["error"]
        assert leftovers(tmp_path / "srv") == []


def test_the_sweep_spares_a_young_upload_whose_row_is_on_its_way(tmp_path):
    from dfer.serve.disk import YOUNG, DataDir

    disk = DataDir(tmp_path / "d")
    young, old = disk.upload("a" * 36), disk.upload("b" * 36)
    young.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - YOUNG - 5, time.time() - YOUNG - 5))
    disk.sweep({}, keep_uploads=False, at_start=False)
    assert young.exists() and not old.exists()


# -- 5. the probe ----------------------------------------------------------------------------------
def test_hostile_files_are_refused_before_they_are_decoded(tmp_path, clip):
    files = tmp_path / "files"
    files.mkdir()
    huge = hostile.huge_png_mov(files / "huge.mov")
    lying = hostile.lying_avi(files / "lying.avi", frames=1600, claimed=2, fps=25)
    still = hostile.still_png(files / "still.png")
    concat = hostile.ffconcat(files / "list.mp4", clip)
    with live(tmp_path, max_duration=60.0) as (base, app):
        r = upload(base, huge)
        assert r.status_code == 413 and "--max-frame" in r.json()["error"]
        r = upload(base, lying)  # 64 s of video whose header says 0.08 s
        assert r.status_code == 413 and "more than 60 s of video" in r.json()["error"]
        r = upload(base, still)
        assert r.status_code == 415 and "'png_pipe' file is not accepted" in r.json()["error"]
        r = upload(base, concat)
        assert r.status_code == 415
        assert leftovers(tmp_path / "srv") == []


def test_the_probe_reads_no_more_than_the_header_of_a_huge_frame(tmp_path):
    huge = hostile.huge_png_mov(tmp_path / "huge.mov")
    out = subprocess.run([sys.executable, "-c", "import sys; from dfer.serve.probe import main; main([sys.argv[1]]);"
                          "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])",
                          str(huge)], capture_output=True, text=True, timeout=60).stdout.split()
    assert "--max-frame" in " ".join(out) and int(out[-1]) < 150_000  # KB: the 192 MB frame was never decoded


def test_the_probe_runs_under_an_address_space_limit(tmp_path, clip):
    limits = Limits()
    info = asyncio.run(probe_upload(clip, [sys.executable, "-m", "dfer.serve.probe"], 60, limits, memory=4 << 30))
    assert info["frames"] == 30 and info["streams"] == ["video"]
    with pytest.raises(ProbeError, match="out of memory"):  # an interpreter cannot even start in 64 MB
        asyncio.run(probe_upload(clip, [sys.executable, "-m", "dfer.serve.probe"], 60, limits, memory=64 << 20))


def test_probes_run_one_at_a_time_without_the_secrets(tmp_path, clip, monkeypatch):
    log = tmp_path / "probes.log"
    spy = ("import json, os, sys, time\n"
           f"open({str(log)!r}, 'a').write(json.dumps(['start', time.time(), 'DFER_TOKEN' in os.environ]) + '\\n')\n"
           "time.sleep(0.4)\n"
           f"open({str(log)!r}, 'a').write(json.dumps(['end', time.time(), False]) + '\\n')\n"
           "from dfer.serve.probe import main; sys.exit(main(sys.argv[1:]))\n")
    monkeypatch.setenv("DFER_TOKEN", "must-not-leak")
    with live(tmp_path, max_probes=1, probe_command=[sys.executable, "-c", spy]) as (base, _):
        codes: list[int] = []
        threads = [threading.Thread(target=lambda: codes.append(upload(base, clip).status_code)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert codes == [202, 202, 202]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    running, most = 0, 0
    for kind, _, leaked in sorted(events, key=lambda e: e[1]):
        running += 1 if kind == "start" else -1
        most = max(most, running)
        assert not leaked
    assert most == 1


def test_a_worker_checks_every_frame_of_an_upload_on_every_pass(tmp_path, ckpt):
    """A file whose header and first frames pass the probe and whose later frames are over --max-frame: the
    job fails naming the frame, in the analysis and in the explanation pass alike."""
    from dfer.serve.jobs import Job
    from dfer.serve.spec import ModelSpec, WorkerSetup
    from dfer.serve.worker import JobRunner
    from hostile import size_switch

    video = size_switch(tmp_path / "v.avi", [(5, 160, 120), (5, 640, 480)])
    setup = WorkerSetup(ModelSpec(ckpt, backend="torch"), tmp_path, max_frame=(320, 240))
    runner = JobRunner(setup.model.load(), setup, threading.Event())
    job = Job("j1", "running", 0.0, None, QueuedParams(num_frames=10), "clip.avi", 1, 0.0, 0.0)
    outcome = runner.execute(job, video, tmp_path / "partial", tmp_path / "final", lambda value: True)
    assert outcome.status == "failed"
    assert "clip.avi: frame 6 is 640x480, over the limit of 320x240 (--max-frame)" in outcome.error
    assert str(tmp_path) not in outcome.error


# -- 6. files --------------------------------------------------------------------------------------
def test_artifacts_are_never_read_through_a_symlink(served, tmp_path):
    base, job, data = served
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's own file")
    folder = data / "jobs" / job["id"]
    csv = folder / "episodes.csv"
    original = csv.read_bytes()
    csv.unlink()
    csv.symlink_to(secret)
    try:
        r = httpx.get(f"{base}/v1/jobs/{job['id']}/episodes.csv", headers=AUTH)
        assert r.status_code == 404 and "server's own" not in r.text
        assert "episodes.csv" not in httpx.get(f"{base}/v1/jobs/{job['id']}", headers=AUTH).json()["artifacts"]
    finally:
        csv.unlink()
        csv.write_bytes(original)
        csv.chmod(0o600)  # as the worker wrote it
    moved = folder.with_name(folder.name + ".real")
    folder.rename(moved)
    folder.symlink_to(moved)  # the whole job folder a link
    try:
        assert httpx.get(f"{base}/v1/jobs/{job['id']}/predictions.csv", headers=AUTH).status_code == 404
    finally:
        folder.unlink()
        moved.rename(folder)


def test_the_data_folders_files_are_private(served):
    _, job, data = served
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for sub in ("uploads", "jobs", "incoming"):
        assert stat.S_IMODE((data / sub).stat().st_mode) == 0o700
    for f in (data / "jobs" / job["id"]).iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_instances_on_one_shared_folder_never_sweep_each_other(tmp_path, clip):
    share = tmp_path / "share"
    with live(tmp_path / "a", shared_dir=share) as (base_a, app_a), live(tmp_path / "b", shared_dir=share):
        assert upload(base_a, clip).status_code == 202
        root_a = app_a.state.service.disk.root
        assert root_a.parent == share.resolve() and root_a.name.startswith("instance-")
        assert len(list((root_a / "uploads").iterdir())) == 1
    # a restart of B sweeps at start-up: A's upload survives; A keeps its sub-folder across restarts
    with live(tmp_path / "b", shared_dir=share), live(tmp_path / "a", shared_dir=share) as (_, again):
        assert again.state.service.disk.root == root_a
        assert len(list((root_a / "uploads").iterdir())) == 1


# -- 7. secrets ------------------------------------------------------------------------------------
def test_the_token_comes_from_the_file_not_the_environment(served):
    base, _, _ = served
    assert httpx.get(base + "/v1/jobs", headers={"Authorization": "Bearer from-the-environment"}).status_code == 401
    assert httpx.get(base + "/v1/jobs", headers=AUTH).status_code == 200


def test_the_token_never_reaches_the_workers(served):
    workers = httpx.get(served[0] + "/healthz", headers=AUTH).json()["workers"]
    for w in workers:
        environ = Path(f"/proc/{w['pid']}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith(b"DFER_TOKEN=") for e in environ), w


def test_ray_without_token_authentication_is_refused(ckpt, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    rc = main(["serve", "--checkpoint", str(ckpt), "--data-dir", str(tmp_path / "d"), "--engine", "ray",
               "--ray-address", "auto"])
    err = capsys.readouterr().err
    assert rc == 2 and "without token authentication" in err and "RAY_AUTH_MODE=token" in err


def test_a_token_file_that_cannot_be_read_is_one_line(ckpt, tmp_path, capsys):
    rc = main(["serve", "--checkpoint", str(ckpt), "--token-file", str(tmp_path / "absent")])
    err = capsys.readouterr().err
    assert rc == 2 and "--token-file" in err and "cannot read it" in err and "Traceback" not in err


# -- 7. the second round: what a file holds, what a job holds, cancelling, the form ------------------
def test_a_resolution_switch_past_the_limit_fails_naming_the_frame(served, tmp_path):
    """Header and first frames 160x120 (the probe passes them under --max-frame 320x240); frames 640x480
    after: the worker checks every decoded frame and the job fails in one sentence."""
    base, _, data = served
    video = hostile.size_switch(tmp_path / "switch.avi", [(8, 160, 120), (8, 640, 480)])
    r = upload(base, video, AUTH)
    assert r.status_code == 202, r.text
    job = wait_done(lambda path: httpx.get(base + path, headers=AUTH, timeout=30), r.json()["id"])
    assert job["status"] == "failed" and "switch.avi: frame 9 is 640x480, over the limit of 320x240" in job["error"]
    assert str(data) not in job["error"]


def test_head_on_an_artifact_answers_its_headers_without_a_body(served):
    base, job, _ = served
    signed = job["artifact_urls"]["summary.json"]
    for headers, url in ((AUTH, f"/v1/jobs/{job['id']}/summary.json"), ({}, signed)):
        r = httpx.head(base + url, headers=headers, timeout=10)
        get = httpx.get(base + url, headers=headers, timeout=10)
        assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(len(get.content))
    assert httpx.head(base + f"/v1/jobs/{job['id']}/nope.csv", headers=AUTH, timeout=10).status_code == 404
    assert httpx.head(base + f"/v1/jobs/{job['id']}/summary.json", timeout=10).status_code == 401  # same checks


def test_two_deletes_of_a_running_explain_job_free_its_worker(served, tmp_path):
    base, _, data = served
    long = write_face_video(tmp_path / "long.mp4", n=400, size=(160, 120))
    job_id = upload(base, long, AUTH, explain="true").json()["id"]
    get = lambda: httpx.get(base + "/healthz", headers=AUTH, timeout=10).json()  # noqa: E731
    wait_for(lambda: any(w["job"] == job_id for w in get()["workers"]), timeout=60, what="the job to start")
    time.sleep(2.0)  # into the job
    first = httpx.delete(base + f"/v1/jobs/{job_id}", headers=AUTH, timeout=10)
    second = httpx.delete(base + f"/v1/jobs/{job_id}", headers=AUTH, timeout=10)
    assert (first.status_code, second.status_code) == (202, 200)
    t0 = time.monotonic()
    wait_for(lambda: all(w["job"] != job_id for w in get()["workers"]), timeout=20, what="the worker to be freed")
    assert time.monotonic() - t0 < 15
    wait_for(lambda: not any(job_id in p.name for sub in ("jobs", "uploads", "incoming") if (data / sub).is_dir()
                             for p in (data / sub).iterdir()), timeout=20, what="the job's files to go")


def _form(parts: list[tuple[str, bytes]], boundary: str = "dferform") -> tuple[bytes, dict[str, str]]:
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
                    + (b'; filename="v.mp4"\r\nContent-Type: video/mp4' if name == "video" else b"")
                    + b"\r\n\r\n" + value + b"\r\n" for name, value in parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_a_form_of_one_field_repeated_is_refused_after_a_few_parts(tmp_path, clip):
    logged = []
    with live(tmp_path, log=logged.append) as (base, _):
        body, headers = _form([("stride", b"5")] * 50_000 + [("video", clip.read_bytes())])
        t0 = time.monotonic()
        r = httpx.post(base + "/v1/jobs", content=body, headers=headers, timeout=60)
        assert r.status_code == 400 and "more than 16 parts" in r.json()["error"]
        assert time.monotonic() - t0 < 10 and leftovers(tmp_path / "srv") == []


def test_a_boundary_over_70_characters_is_a_400(tmp_path, clip):
    with live(tmp_path) as (base, _):
        body, headers = _form([("video", clip.read_bytes())], boundary="b" * 300)
        r = httpx.post(base + "/v1/jobs", content=body, headers=headers, timeout=30)
        assert r.status_code == 400 and "boundary is 300 characters long" in r.json()["error"]


def test_an_aborted_upload_is_one_log_line_and_leaves_nothing(tmp_path, clip):
    logged = []
    with live(tmp_path, log=logged.append) as (base, app):
        port = int(base.rsplit(":", 1)[1])
        body, headers = _form([("video", clip.read_bytes() * 20)])
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {headers['Content-Type']}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
        wait_for(lambda: leftovers(tmp_path / "srv"), timeout=10, what="the upload to start")
        s.close()  # mid-upload
        wait_for(lambda: not leftovers(tmp_path / "srv"), timeout=10, what="the part file to go")
        wait_for(lambda: any("upload aborted" in m for m in logged), timeout=10, what="the log line")
        assert app.state.service.uploads.uploads == 0  # the reservation released
    aborted = [m for m in logged if "aborted" in m or "Traceback" in m or "failed" in m]
    assert len(aborted) == 1 and "\n" not in aborted[0] and "Traceback" not in aborted[0]
