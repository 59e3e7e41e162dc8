"""Progress that reads well where it goes: a live bar on a terminal, a few plain lines in a log.

On a terminal (stderr is a TTY) this is tqdm. Elsewhere (CI, `> log`, services) a carriage-return
bar would write one multi-kilobyte line, so instead one line goes to stderr at every tenth of the
work (or every 30 s when the total is unknown) and one at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class _Lines:
    def __init__(self, total: int | None, desc: str, unit: str, initial: int) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.t0 = self.t_last = time.perf_counter()
        self.step = max(1, total // 10) if total else None
        self.postfix: dict[str, Any] = {}

    def _line(self) -> None:
        rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
        of = f"/{self.total}" if self.total else ""
        extra = "".join(f" {k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}{of} {self.unit}s, {rate:.1f} {self.unit}/s{extra}", file=sys.stderr, flush=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.n += n
        self.postfix = postfix
        now = time.perf_counter()
        due = (self.n % self.step == 0) if self.step else (now - self.t_last >= 30)
        if due and self.n != self.total:
            self.t_last = now
            self._line()

    def close(self) -> None:
        if self.n:
            self._line()


class _Tqdm:
    def __init__(self, bar) -> None:
        self.bar = bar

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.bar.update(n)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()


class _Off:
    def update(self, n: int = 1, **postfix: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int | None, desc: str, *, unit: str = "item", enabled: bool = True, initial: int = 0,
                 lines: bool = True):
    """An object with `update(n, **postfix)` and `close()`; `lines=False`: silent when not on a terminal."""
    if not enabled:
        return _Off()
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return _Tqdm(tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False))
    return _Lines(total, desc, unit, initial) if lines else _Off()
