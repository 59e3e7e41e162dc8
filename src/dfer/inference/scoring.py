"""Backend calls kept in flight while the frame loop goes on.

A runtime that serves several requests at once (OpenVINO streams: `backend.concurrency` > 1)
scores window batches on worker threads while the caller keeps decoding, tracking and cropping;
results come back in submission order, so a track's windows stay in time order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np

Tag = TypeVar("Tag")


class ScoringQueue(Generic[Tag]):
    """`fn(clips)` on up to `depth` worker threads, results in submission order.

    depth 1: the call runs at once on the caller's thread, so `ready()` right after `submit()`
    has it (windows reported on the frame that made them). depth > 1: `submit` waits only when
    `depth` calls are already running, which bounds memory and a live stream's lag.
    """

    def __init__(self, fn: Callable[..., np.ndarray], depth: int = 1, *, tagged: bool = False) -> None:
        self.fn = fn
        self.tagged = tagged  # fn(clips, tag): a scorer that needs to know what it scores (explanations)
        self.depth = max(1, int(depth))
        self._pool = ThreadPoolExecutor(self.depth, thread_name_prefix="dfer-score") if self.depth > 1 else None
        self._queue: deque[tuple[Future, Tag]] = deque()

    def submit(self, clips: np.ndarray, tag: Tag) -> None:
        if self._pool is None:
            done: Future = Future()
            done.set_result(self._call(clips, tag))  # errors raise here, on the caller's thread
            self._queue.append((done, tag))
            return
        if len(self._queue) >= self.depth:
            self._queue[0][0].exception()  # wait for the oldest call (its error, if any, is raised by ready())
        self._queue.append((self._pool.submit(self._call, clips, tag), tag))

    def _call(self, clips: np.ndarray, tag: Tag) -> np.ndarray:
        return self.fn(clips, tag) if self.tagged else self.fn(clips)

    def ready(self) -> list[tuple[np.ndarray, Tag]]:
        """Finished results from the head of the queue, without waiting."""
        out = []
        while self._queue and self._queue[0][0].done():
            fut, tag = self._queue.popleft()
            out.append((fut.result(), tag))
        return out

    def drain(self) -> list[tuple[np.ndarray, Tag]]:
        """Every result still owed, waiting for them."""
        out = []
        while self._queue:
            fut, tag = self._queue.popleft()
            out.append((fut.result(), tag))
        return out

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop the workers; calls not started are dropped (the caller stopped reading results)."""
        self._queue.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
