"""Spreading per-item work (clips to prepare, videos to predict) over a Ray cluster.

dfer's batch jobs are collections of independent items whose outputs are written per item and
atomically; a rerun skips finished items. `ray_map` keeps exactly that contract on Ray: one
actor per worker slot builds its heavy state once (`make_worker()`: the face detector, the loaded
model) and then runs items one at a time; results come back as they finish. A worker process
that dies mid-item is restarted by Ray and the item is run again (its outputs are simply
rewritten); an item that keeps failing, or raises, is reported as failed and the rest goes on.

`--ray-address`: None starts a local Ray instance sized to this machine; "auto" joins the cluster
this machine belongs to (`ray start --head` / `ray start --address ...`); "ray://host:10001" joins
a remote cluster through Ray Client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dfer.errors import ConfigError
from dfer.options import ENGINES, flag  # noqa: F401 - ENGINES re-exported


@dataclass(frozen=True)
class RayOptions:
    # Each field made with `flag` is also the --ray-* flag of every command that takes --engine.
    address: str | None = flag(None, name="ray_address", help="default: start a local Ray sized to this machine; "
                                                               "auto: join the running cluster; ray://HOST:10001: Ray Client")
    cpus_per_worker: float = flag(1.0, name="ray_cpus_per_worker", kind="positive_float",
                                  help="CPUs each Ray worker asks for")
    gpus_per_worker: float = flag(0.0, name="ray_gpus_per_worker", kind="nonneg_float", help="GPUs each Ray worker asks for")
    workers: int = flag(0, name="ray_workers", kind="nonneg_int", help="Ray workers (0: as the cluster's resources allow)")
    max_retries: int = 2  # re-runs of an item whose worker process died

    def __post_init__(self) -> None:
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0 or self.workers < 0 or self.max_retries < 0:
            raise ConfigError(f"Ray options need cpus_per_worker > 0, gpus_per_worker >= 0, workers >= 0 and "
                              f"max_retries >= 0; got {self}")


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError('the Ray engine needs Ray: pip install "dfer[ray]"') from None
    return ray


def ensure_ray(options: RayOptions):
    """Connect to (or start) Ray once per process; returns the module."""
    ray = import_ray()
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
        try:
            ray.init(address=options.address, **kw)
        except ConnectionError as exc:
            raise ConfigError(f"cannot reach a Ray cluster at {options.address!r} ({exc})") from None
    return ray


def _slots(ray, options: RayOptions) -> int:
    if options.workers:
        return options.workers
    res = ray.cluster_resources()
    by_cpu = int(res.get("CPU", 1) // options.cpus_per_worker)
    by_gpu = int(res.get("GPU", 0) // options.gpus_per_worker) if options.gpus_per_worker else by_cpu
    return max(1, min(by_cpu, by_gpu))


def ray_map(make_worker: Callable[[], Callable[[Any], Any]], items: Iterable[Any], options: RayOptions,
            ) -> Iterator[tuple[Any, Any, str | None]]:
    """Yield (item, result, None) or (item, None, error) for every item, in completion order."""
    ray = ensure_ray(options)
    items = list(items)
    if not items:
        return

    @ray.remote
    class Worker:
        def __init__(self, factory):
            self.fn = factory()

        def run(self, item):
            return self.fn(item)

    n = min(len(items), _slots(ray, options))
    actor_options = {"num_cpus": options.cpus_per_worker, "num_gpus": options.gpus_per_worker,
                     "max_restarts": -1, "max_task_retries": options.max_retries}
    actors = [Worker.options(**actor_options).remote(make_worker) for _ in range(n)]
    pending: dict[Any, tuple[Any, Any]] = {}  # object ref -> (actor, item)
    queue = iter(items)

    def feed(actor) -> None:
        item = next(queue, None)
        if item is not None:
            pending[actor.run.remote(item)] = (actor, item)

    for actor in actors:
        feed(actor)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor, item = pending.pop(ready[0])
            try:
                result, error = ray.get(ready[0]), None
            except ray.exceptions.RayError as exc:  # the worker died too often, or the item raised
                cause = getattr(exc, "cause", None) or exc
                result, error = None, f"{cause.__class__.__name__}: {(str(cause).splitlines() or [''])[0]}"
            feed(actor)
            yield item, result, error
    finally:
        for actor in actors:
            ray.kill(actor)
