"""What `dfer serve` is doing, for people and for Prometheus.

- `/metrics` (Prometheus text format through prometheus-client, behind the token like the API):
  jobs by status and the queue depth (read from the job database at each scrape), job seconds
  (histogram), worker restarts, bytes uploaded, request latency by route (histogram);
- with --access-log, one JSON log line per request (`event: request`: method, route, status, milliseconds,
  request id); off by default, so the page's polling does not fill the log
  and per job state change (`event: job`: id, status, seconds, error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from dfer.serve.jobs import JobStatus

STATUSES = tuple(JobStatus)
# Label values come from a fixed set, never from what a client sends: any other method is OTHER and a
# path no route matched is `unmatched`, so no request can add series (each series costs memory forever).
METHODS = frozenset({"GET", "HEAD", "POST", "DELETE", "OPTIONS"})


class ServiceMetrics:
    def __init__(self, count_jobs: Callable[[JobStatus], int], log: Callable[[str], None], *,
                 access_log: bool = False) -> None:
        self.access_log = access_log
        self.registry = CollectorRegistry()  # one per app: tests and embedders may run several
        self.log = log
        self.job_seconds = Histogram("dfer_job_seconds", "Wall time of finished jobs", ["status"],
                                     buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600), registry=self.registry)
        self.worker_restarts = Counter("dfer_worker_restarts", "Workers replaced after they died", registry=self.registry)
        self.bytes_uploaded = Counter("dfer_uploaded_bytes", "Bytes of accepted uploads", registry=self.registry)
        self.request_seconds = Histogram("dfer_request_seconds", "Request latency", ["method", "route", "status"],
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
                                         registry=self.registry)
        self.registry.register(_JobGauges(count_jobs))

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def request(self, method: str, route: str, status: int, seconds: float, rid: str) -> None:
        """`route` is a route's template (/v1/jobs/{job_id}) or 'unmatched'; `method` as the client sent it."""
        method = method if method in METHODS else "OTHER"
        status = status if 100 <= status <= 599 else 0
        self.request_seconds.labels(method, route, str(status)).observe(seconds)
        if self.access_log:
            self.log(json.dumps({"event": "request", "method": method, "route": route, "status": status,
                                 "ms": round(1000 * seconds, 1), "request_id": rid}))

    def job(self, job_id: str, status: JobStatus, seconds: float | None = None, error: str | None = None) -> None:
        status = JobStatus(status)
        if seconds is not None and status in (JobStatus.DONE, JobStatus.FAILED):
            self.job_seconds.labels(status.value).observe(seconds)
        entry = {"event": "job", "id": job_id, "status": status.value, "time": round(time.time(), 3)}
        if seconds is not None:
            entry["seconds"] = round(seconds, 2)
        if error:
            entry["error"] = error
        self.log(json.dumps(entry))


class _JobGauges:
    """Jobs by status, read from the database when Prometheus scrapes (never out of date)."""

    def __init__(self, count_jobs: Callable[[JobStatus], int]) -> None:
        self.count_jobs = count_jobs

    def collect(self):
        g = GaugeMetricFamily("dfer_jobs", "Jobs by status", labels=["status"])
        for status in STATUSES:
            g.add_metric([status.value], self.count_jobs(status))
        yield g
        yield GaugeMetricFamily("dfer_queue_depth", "Jobs waiting for a worker", value=self.count_jobs(JobStatus.QUEUED))
