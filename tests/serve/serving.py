"""What the service's tests share: the artifacts a job writes, a free port, submitting and waiting for a job,
Debian's chromium and waiting on a page."""

import shutil
import socket
import time
from pathlib import Path

from dfer.inference.people import available as people_available

ARTIFACTS = ["predictions.csv", "tracks.csv", "summary.json", "timeline.png", "annotated.mp4", "episodes.csv",
             "people.csv"] + (["people.jpg"] if people_available() else [])  # one face per person


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")  # driven by Playwright (its own download is blocked)


def poll_page(page, expression: str, timeout: float = 30.0, show: str = "") -> None:
    """Wait until `expression` is true in the page; on a timeout, say what the element `show` (a CSS
    selector) reads."""
    t0 = time.time()
    while not page.evaluate(expression):
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {expression}" + (f": {page.inner_text(show)}" if show else ""))
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit(client, path, headers=None, **fields):
    with open(path, "rb") as f:
        return client.post("/v1/jobs", files={"video": (Path(path).name, f, "video/mp4")},
                           data={k: str(v) for k, v in fields.items()}, headers=headers or {})


def wait_for(predicate, timeout=60.0, what="condition", every=0.05):
    """The first true value of `predicate()`, polled every `every` s; fails naming `what` after `timeout` s."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def wait_done(get, job_id, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {job}")
