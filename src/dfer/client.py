"""A small Python client for `dfer serve`.

    from dfer.client import Client

    with Client("http://127.0.0.1:8000", token="...") as c:
        job = c.submit("talk.mp4", stride=15, explain=False)      # -> job id
        done = c.wait(job, progress=lambda p: print(f"{p:.0%}"))  # the job with its summary, once done
        c.download(job, "predictions.csv", "preds.csv")
        c.jobs(); c.delete(job)

Errors from the server (its JSON `{"error": ...}`), a failed job and a wait that runs out raise
`ClientError` with the server's words.
"""

from __future__ import annotations

import ipaddress
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dfer.errors import DferError
from dfer.serve.jobs import JobStatus


class ClientError(DferError):
    """What the server refused, or a job that failed, in one line."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        parts = httpx.URL(url)
        if token and parts.scheme == "http" and not is_loopback(parts.host or ""):
            warnings.warn(f"the token goes to {parts.host} over plain http: anyone on the way can read it; "
                          "use https (a reverse proxy in front of dfer serve)", stacklevel=2)
        # Redirects are not followed: a token must not travel to wherever a 3xx points.
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout, follow_redirects=False)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ClientError(f"{self.http.base_url}{path}: {exc.__class__.__name__}: {exc}") from None
        if 300 <= r.status_code < 400:
            raise ClientError(f"{method} {path}: HTTP {r.status_code}: the server redirects to "
                              f"{r.headers.get('location', '(no location)')}; give the client that URL instead")
        if r.status_code >= 400:
            try:
                message = r.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:200]
            raise ClientError(f"{method} {path}: HTTP {r.status_code}: {message}")
        return r

    def _json(self, method: str, path: str, **kw) -> Any:
        """The answer's JSON; ClientError when it is not JSON (a proxy's page, another service)."""
        r = self._call(method, path, **kw)
        try:
            return r.json()
        except ValueError:
            kind = r.headers.get("content-type", "no content type")
            raise ClientError(f"{method} {path}: HTTP {r.status_code}: the answer is not JSON ({kind}: "
                              f"{r.text[:80]!r}); is {self.http.base_url} a dfer server?") from None

    def model(self) -> dict[str, Any]:
        """Class names, clip size, runtime and what the model was trained on."""
        return self._json("GET", "/v1/model")

    def submit(self, video: str | Path, **params: Any) -> str:
        """Upload a video with optional stride, window, detect_every, min_confidence, explain; its job id."""
        fields = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items() if v is not None}
        with open(video, "rb") as f:
            answer = self._json("POST", "/v1/jobs", files={"video": (Path(video).name, f, "application/octet-stream")},
                                data=fields)
        return answer["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, *, progress: Callable[[float], None] | None = None, timeout: float = 3600.0,
             poll: float = 1.0) -> dict[str, Any]:
        """The job once done (with its summary and artifacts); ClientError if it failed or took too long."""
        t0 = time.monotonic()
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(float(job.get("progress", 0.0)))
            if job["status"] == JobStatus.DONE:
                return job
            if job["status"] in (JobStatus.FAILED, JobStatus.CANCELLED):
                raise ClientError(f"job {job_id} {job['status']}: {job.get('error', '')}")
            if time.monotonic() - t0 > timeout:
                raise ClientError(f"job {job_id} not done after {timeout:.0f} s (status {job['status']})")
            time.sleep(poll)

    def download(self, job_id: str, name: str, dest: str | Path) -> Path:
        """An artifact (predictions.csv, annotated.mp4, ...) to `dest`, streamed."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        try:
            with self.http.stream("GET", f"/v1/jobs/{job_id}/{name}") as r:
                if r.status_code >= 300:
                    r.read()
                    try:
                        message = r.json().get("error", "")
                    except ValueError:
                        message = f"HTTP {r.status_code} without a JSON error ({r.headers.get('location', r.text[:80])})"
                    raise ClientError(f"GET /v1/jobs/{job_id}/{name}: HTTP {r.status_code}: {message}")
                with open(part, "wb") as f:
                    for chunk in r.iter_bytes(1 << 20):
                        f.write(chunk)
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise ClientError(f"download of {name} failed: {exc}") from None
        part.replace(dest)
        return dest

    def jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._json("GET", "/v1/jobs", params={"limit": limit})["jobs"]

    def delete(self, job_id: str) -> dict[str, Any]:
        """A running job is cancelled (its worker stops, its outputs go; {"status": "cancelled"}); any other
        job is removed with its files ({"deleted": true})."""
        return self._json("DELETE", f"/v1/jobs/{job_id}")
