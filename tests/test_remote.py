"""Checkpoints by URL and from a model hub: a local HTTP server on loopback stands in for the remote
host and, through HF_ENDPOINT, for the hub."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dfer.checkpoint import load_checkpoint
from dfer.cli import main
from dfer.errors import CheckpointError
from dfer.remote import resolve_checkpoint


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate_once: set[str] = set()  # paths whose first GET stops half way (the connection drops)
    requests: list[tuple[str, str, str]] = []

    def log_message(self, *args):
        pass

    def _send(self, head: bool) -> None:
        path = self.path.split("?")[0]
        self.requests.append((self.command, path, self.headers.get("Range", "")))
        body = self.files.get(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        part = body[start:]
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Accept-Ranges", "bytes")
        # what the hub's resolve endpoint answers (huggingface_hub reads these)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", "a" * 40)
        self.end_headers()
        if head:
            return
        if path in self.truncate_once and not rng:
            self.truncate_once.discard(path)
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(part)

    def do_GET(self):
        self._send(head=False)

    def do_HEAD(self):
        self._send(head=True)


@pytest.fixture
def server(ckpt, monkeypatch, tmp_path):
    _Files.files = {}
    _Files.truncate_once = set()
    _Files.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DFER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    yield f"http://127.0.0.1:{httpd.server_address[1]}", ckpt.read_bytes()
    httpd.shutdown()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_verified_download_is_fetched_once_then_loaded(server, capsys):
    url, data = server
    _Files.files["/models/best.pt"] = data
    ref = f"{url}/models/best.pt#sha256={_sha(data)}"
    path = resolve_checkpoint(ref, progress=False)
    assert path.read_bytes() == data and path.parent.name == _sha(data)
    assert load_checkpoint(ref).to_dict()["format"] == "dfer-checkpoint"
    assert [r for r in _Files.requests if r[0] == "GET"] == [("GET", "/models/best.pt", "")]  # cached after once
    assert "not checked" not in capsys.readouterr().err
    resolve_checkpoint(f"{url}/models/best.pt", progress=False)
    resolve_checkpoint(f"{url}/models/best.pt", progress=False)
    assert capsys.readouterr().err.count("has no #sha256=...; the downloaded file is not checked") == 1


def test_a_download_with_the_wrong_digest_is_refused_leaving_nothing(server, tmp_path):
    url, data = server
    _Files.files["/best.pt"] = data
    with pytest.raises(CheckpointError, match="SHA-256 mismatch: expected 0{64}, got " + _sha(data)):
        resolve_checkpoint(f"{url}/best.pt#sha256={'0' * 64}", progress=False)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing kept, nothing loaded


def test_truncated_transfer_is_resumed_with_a_range_request(server):
    url, data = server
    _Files.files["/big/best.pt"] = data
    _Files.truncate_once.add("/big/best.pt")
    path = resolve_checkpoint(f"{url}/big/best.pt#sha256={_sha(data)}", progress=False)
    assert path.read_bytes() == data
    gets = [r for r in _Files.requests if r[0] == "GET"]
    assert len(gets) == 2 and gets[0][2] == ""
    resumed_at = int(gets[1][2].removeprefix("bytes=").rstrip("-"))  # what the first transfer had written
    assert 0 < resumed_at <= len(data) // 2


def test_every_bad_reference_is_one_error_naming_its_reason(server, tmp_path, capsys):
    url, data = server
    with pytest.raises(CheckpointError, match="HTTP 404"):
        resolve_checkpoint(f"{url}/nope.pt#sha256={_sha(data)}", progress=False)
    _Files.files["/notes.pt"] = b"just some text, not a checkpoint"
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(f"{url}/notes.pt#sha256={_sha(b'just some text, not a checkpoint')}")
    out = str(tmp_path / "o")
    rc = main(["predict", "x.mp4", "--checkpoint", "ftp://host/best.pt", "--out", out])  # refused when parsed
    assert rc == 2 and "must be http(s):// or hf://, not ftp://" in capsys.readouterr().err
    assert main(["evaluate", "https://127.0.0.1:1/best.pt#sha256=" + "1" * 64, "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach 127.0.0.1" in err and "Traceback" not in err and err.count("\n") == 1


def test_hub_reference_through_hf_endpoint(server, monkeypatch):
    pytest.importorskip("huggingface_hub")
    url, data = server
    monkeypatch.setenv("HF_ENDPOINT", url)
    _Files.files["/someone/dfer-demo/resolve/v1/fold_1/best.pt"] = data
    path = resolve_checkpoint(f"hf://someone/dfer-demo/fold_1/best.pt@v1#sha256={_sha(data)}", progress=False)
    assert path.read_bytes() == data
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        resolve_checkpoint(f"hf://someone/dfer-demo/fold_1/best.pt@v1#sha256={'f' * 64}", progress=False)
    with pytest.raises(CheckpointError, match="HTTP 404"):
        resolve_checkpoint("hf://someone/dfer-demo/missing.pt@v1", progress=False)
