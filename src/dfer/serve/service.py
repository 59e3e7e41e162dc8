"""The service's parts, built once per app: job store, data folder, worker pool, metrics, security policy;
its start (recover interrupted jobs, sweep, start the workers) and its housekeeping."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fastapi import Request

from dfer.scale import RayOptions
from dfer.serve.config import ServeConfig
from dfer.serve.disk import DataDir, instance_root, private_dir
from dfer.serve.jobs import JobStore
from dfer.serve.live_session import LiveHub
from dfer.serve.metrics import ServiceMetrics
from dfer.serve.pool import PoolLimits, WorkerPool
from dfer.serve.security import Policy, own_host_names, page_csp
from dfer.serve.spec import ModelSpec, WorkerSetup
from dfer.serve.upload import UploadSpace


@dataclass
class Service:
    config: ServeConfig
    disk: DataDir
    store: JobStore
    metrics: ServiceMetrics
    pool: WorkerPool
    policy: Policy
    page_html: str
    start_workers: bool
    uploads: UploadSpace  # disk space promised to uploads under way
    probe_slots: asyncio.Semaphore  # probes running at once
    live: LiveHub
    log: Callable[[str], None]
    _started: list[bool] = field(default_factory=list)

    @classmethod
    def build(cls, model: ModelSpec, config: ServeConfig, *, start_workers: bool, log: Callable[[str], None]) -> Service:
        database, root = None, Path(config.data_dir).resolve()
        if config.shared_dir is not None:  # files in this instance's own part of the share, the database here
            private_dir(root)
            database = root / "jobs.sqlite"
            root = instance_root(Path(config.shared_dir).resolve(), root)
        disk = DataDir(root, database)
        store = JobStore(disk.database)
        metrics = ServiceMetrics(store.count, log, access_log=config.access_log)
        setup = WorkerSetup(model, disk.root, keep_uploads=config.keep_uploads, parent_pid=os.getpid(),
                            explain_checkpoint=config.explain_checkpoint, database=database,
                            max_frame=tuple(config.max_frame))
        limits = PoolLimits.from_config(config)
        pool = WorkerPool(store, setup, limits, metrics=metrics, log=log, tick_every=config.sweep_every,
                          on_tick=lambda: housekeeping(store, disk, config, log, at_start=False),
                          make_worker=_ray_factory(setup, store, disk, config) if config.engine == "ray" else None)
        page_html = resources.files("dfer.serve").joinpath("static/index.html").read_text("utf-8")
        policy = Policy(config.token, own_host_names(config.host, config.allowed_hosts), csp=page_csp(page_html))
        slots = asyncio.Semaphore(config.max_probes or os.cpu_count() or 1)
        camera = bool(config.live_source)
        live = LiveHub(model, disk, store, policy, config.live_sessions, tuple(config.max_frame if camera else
                                                                              config.live_max_frame),
                       config.max_queue, log, source=config.live_source,
                       save=str(Path(config.live_save).resolve()) if config.live_save else "")
        return cls(config, disk, store, metrics, pool, policy, page_html, start_workers and not camera,
                   UploadSpace(disk, config.min_free), slots, live, log)

    def startup(self) -> None:
        """Recover interrupted jobs, sweep, start the workers and wait for the model (once; ConfigError
        when the workers cannot load it). `dfer serve` calls it before binding the port."""
        if self._started:
            return
        again, failed = self.store.recover_interrupted(self.config.max_attempts)
        if again:
            self.log(f"re-queued {len(again)} job(s) interrupted by the last shutdown: {', '.join(again)}")
        if failed:
            self.log(f"failed {len(failed)} job(s) the server stopped on {self.config.max_attempts} times: "
                     f"{', '.join(failed)}")
        housekeeping(self.store, self.disk, self.config, self.log, at_start=True)
        if self.start_workers:
            self.pool.start()
            d = self.pool.description
            self.log(f"{len(self.pool.slots)} worker process(es) ready: {d['backend_detail']} "
                     f"({d['backend_choice'].get('why')})")
        self.live.start()  # camera mode: the worker that reads the source
        self._started.append(True)

    def shutdown(self) -> None:
        self.live.stop()
        if self.start_workers:
            self.pool.stop()
        self.log("shutting down: workers stopped, unfinished jobs stay queued")


def service(request: Request) -> Service:
    """The app's Service, as a FastAPI dependency."""
    return request.app.state.service


def _ray_factory(setup: WorkerSetup, store: JobStore, disk: DataDir, config: ServeConfig):
    """Ray actors for the pool, Ray started (or joined) when the first one is made."""
    made = {}

    def make(name: str):
        if "make" not in made:
            from dfer.serve.ray_engine import ray_workers  # Ray is imported only by a service that uses it

            made["make"] = ray_workers(setup, store, disk, config.ray or RayOptions(), config.shared_dir is not None)
        return made["make"](name)

    return make


def housekeeping(store: JobStore, disk: DataDir, config: ServeConfig, log, *, at_start: bool) -> None:
    """Expire finished jobs past --retention, then remove files no job owns (see DataDir.sweep)."""
    if config.retention > 0:
        expired = disk.expire(store.expired(time.time() - config.retention), store.delete)
        if expired:
            log(f"removed {len(expired)} job(s) older than the retention of {config.retention / 86400:g} days")
    gone = disk.sweep(store.statuses(), keep_uploads=config.keep_uploads, at_start=at_start)
    if gone:
        log(f"removed {len(gone)} orphaned file(s): {', '.join(gone[:5])}" + (" ..." if len(gone) > 5 else ""))
