"""`dfer serve` safe by default: a real server on loopback, and the app through its test client."""

import os
import re
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient
from serving import free_port, wait_done

from conftest import wait_healthy
from dfer.cli import main
from dfer.serve import ModelSpec, ServeConfig, create_app
from synthetic import write_face_video

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


@pytest.fixture(scope="module")
def server(ckpt, tmp_path_factory):
    """A real `dfer serve` with a token on loopback, and one finished job."""
    data = tmp_path_factory.mktemp("secure")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir",
                             str(data / "srv"), "--port", str(port), "--token", TOKEN],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base)
    video = write_face_video(data / "talk.mp4", n=30, size=(160, 120))
    with open(video, "rb") as f:
        r = httpx.post(base + "/v1/jobs", files={"video": ("talk.mp4", f, "video/mp4")}, headers=AUTH, timeout=30)
    job = wait_done(lambda path: httpx.get(base + path, headers=AUTH, timeout=30), r.json()["id"])
    yield base, job, data
    proc.terminate()
    proc.wait(timeout=30)


def test_a_foreign_host_header_is_refused_against_dns_rebinding(server):
    base, _, _ = server
    r = httpx.get(base + "/healthz", headers={"Host": "attacker.example:8000"})
    assert r.status_code == 400 and "not a name of this server" in r.json()["error"]
    assert httpx.get(base + "/healthz", headers={"Host": "localhost"}).status_code == 200


def _body(data):
    with open(data / "talk.mp4", "rb") as f:
        return {"video": ("talk.mp4", f.read(), "video/mp4")}


def test_a_cross_site_write_is_refused(server):
    base, job, data = server
    cross = httpx.post(base + "/v1/jobs", files=_body(data), headers={**AUTH, "Origin": "https://evil.example"})
    assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
    fetch = httpx.delete(f"{base}/v1/jobs/{job['id']}", headers={**AUTH, "Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403


def test_same_origin_or_originless_writes_are_accepted(server):
    base, _, data = server
    same = httpx.post(base + "/v1/jobs", files=_body(data),
                      headers={**AUTH, "Origin": base, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 202
    assert httpx.post(base + "/v1/jobs", files=_body(data), headers=AUTH).status_code == 202  # curl: no Origin


@pytest.mark.parametrize("path", ["/openapi.json", "/v1/model", "/v1/jobs", "/v1/jobs/{id}",
                                  "/v1/jobs/{id}/summary.json"])
def test_the_token_guards_every_api_route(server, path):
    base, job, _ = server
    r = httpx.get(base + path.replace("{id}", job["id"]))
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="dfer"'
    assert r.json()["error"].startswith("missing or wrong token")


def test_the_public_routes_need_no_token(server):
    base, _, _ = server
    assert httpx.get(base + "/").status_code == 200 and httpx.get(base + "/healthz").status_code == 200


def test_a_token_in_the_url_is_refused(server):
    assert httpx.get(f"{server[0]}/v1/jobs?token={TOKEN}").status_code == 400


def test_the_openapi_document_is_served_without_a_cdn_scripted_docs_page(server):
    base = server[0]
    assert httpx.get(base + "/openapi.json", headers=AUTH).status_code == 200
    assert httpx.get(base + "/docs", headers=AUTH).status_code == 404


def test_the_model_route_names_the_runtime_never_a_server_path(server):
    model = httpx.get(server[0] + "/v1/model", headers=AUTH).json()
    assert "/" not in model["backend_choice"]["model"]


def test_signed_artifact_links(server):
    base, job, _ = server
    url = job["artifact_urls"]["annotated.mp4"]
    assert TOKEN not in url and re.fullmatch(rf"/v1/jobs/{job['id']}/annotated.mp4\?expires=\d+&sig=[\w-]+", url)
    r = httpx.get(base + url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.headers["content-type"] == "video/mp4"
    for name in ("content-security-policy", "x-content-type-options"):
        assert name in r.headers
    other = url.replace("annotated.mp4", "summary.json")
    assert httpx.get(base + other).status_code == 401  # signed for another artifact: a bad credential
    expired = re.sub(r"expires=\d+", "expires=1000000000", url)
    assert httpx.get(base + expired).json()["error"].startswith("this link has expired")


def test_security_headers_everywhere(server):
    base, job, _ = server
    page = httpx.get(base + "/")
    for r in (page, httpx.get(base + "/v1/jobs", headers=AUTH), httpx.get(base + "/nope"), httpx.get(base + "/healthz")):
        for name in SECURITY_HEADERS:
            assert name in r.headers, (r.url, name)
    csp = page.headers["content-security-policy"]
    assert "http" not in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert "'sha256-" in csp  # the page's own inline script and style, by hash


def test_errors_are_json_without_server_paths(ckpt, tmp_path):
    app = create_app(ModelSpec(ckpt, device="cpu"), ServeConfig(tmp_path / "srv"), start_workers=False,
                     log=lambda m: None)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        bad = tmp_path / "notes.mp4"
        bad.write_bytes(b"not a video at all" * 100)
        with open(bad, "rb") as f:
            r = c.post("/v1/jobs", files={"video": ("notes.mp4", f, "video/mp4")})
        assert r.status_code == 415 and str(tmp_path) not in r.text and r.json()["error"].startswith("notes.mp4")
        r = c.put("/v1/jobs")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST" and "error" in r.json()
        app.state.store.list = lambda *a: 1 / 0  # a bug, provoked
        r = c.get("/v1/jobs")
        assert r.status_code == 500 and r.json()["error"].startswith("internal error (request id ")
        assert r.headers["x-request-id"] in r.json()["error"] and "ZeroDivisionError" not in r.text


def test_no_token_means_loopback_only(ckpt, capsys):
    rc = main(["serve", "--checkpoint", str(ckpt), "--host", "0.0.0.0", "--port", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "refusing to listen on 0.0.0.0 without a token" in err and "--insecure" in err


def test_python_client_end_to_end(server, tmp_path):
    from dfer.client import Client, ClientError

    base, job, data = server
    seen = []
    with Client(base, token=TOKEN) as c:
        assert c.model()["class_names"] == ["right", "left", "still"]
        job_id = c.submit(data / "talk.mp4", stride=10, min_confidence=0.1)
        done = c.wait(job_id, progress=seen.append, timeout=120, poll=0.2)
        assert done["status"] == "done" and seen and seen[-1] == 1.0
        path = c.download(job_id, "predictions.csv", tmp_path / "out" / "p.csv")
        assert path.read_text().startswith("track_id,")
        assert job_id in [j["id"] for j in c.jobs()]
        c.delete(job_id)
        with pytest.raises(ClientError, match="HTTP 404"):
            c.job(job_id)
        with pytest.raises(ClientError, match="stride must be between 1 and 100000"):
            c.submit(data / "talk.mp4", stride=0)
    with Client(base) as anonymous, pytest.raises(ClientError, match="HTTP 401: missing or wrong token"):
        anonymous.jobs()


def test_the_openapi_document_describes_every_answer_of_the_upload(server):
    base, _, _ = server
    doc = httpx.get(base + "/openapi.json", headers=AUTH).json()
    post = doc["paths"]["/v1/jobs"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["video"] and form["properties"]["video"]["format"] == "binary"
    assert form["properties"]["stride"]["maximum"] == 100_000 and form["properties"]["min_confidence"]["maximum"] == 1.0
    assert {"202", "400", "401", "403", "413", "415", "503"} <= set(post["responses"])
    shape = post["responses"]["415"]["content"]["application/json"]["schema"]
    assert shape["required"] == ["error"]
    assert "202" in doc["paths"]["/v1/jobs/{job_id}"]["delete"]["responses"]  # a running job: cancelled
    assert "422" not in str(doc["paths"]["/v1/jobs"])  # the server answers 400, and says so


# A schema-valid upload of random bytes is refused with 415 (not a video): an expected answer.
SCHEMATHESIS_CONFIG = """[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "415", "429", "5xx"]
"""


@pytest.mark.parametrize("token", [TOKEN, None], ids=["with-token", "without-token"])
def test_schemathesis_finds_nothing_over_the_whole_api(ckpt, tmp_path, token):
    """schemathesis --checks all on loopback, with a token and without one (the default on loopback): the
    OpenAPI document tells the truth about the server as it runs, its security included."""
    pytest.importorskip("schemathesis")
    port = free_port()
    env = {**os.environ, "DFER_TOKEN": token} if token else {k: v for k, v in os.environ.items() if k != "DFER_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "dfer.cli", "serve", "--checkpoint", str(ckpt), "--data-dir",
                             str(tmp_path / "srv"), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        config = tmp_path / "schemathesis.toml"
        config.write_text(SCHEMATHESIS_CONFIG)
        auth = ["-H", f"Authorization: Bearer {token}"] if token else []
        run = subprocess.run([sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
                              f"{base}/openapi.json", "--checks", "all", *auth,
                              "--max-examples", "5", "--seed", "1"], capture_output=True, text=True, timeout=300,
                             cwd=tmp_path)  # its cache folder goes there, not into the checkout
        assert run.returncode == 0 and " failure" not in run.stdout.splitlines()[-1], run.stdout[-4000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
