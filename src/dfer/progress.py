"""Progress that reads well where it goes: a live bar on a terminal, a few plain lines in a log.

On a terminal (stderr is a TTY) this is tqdm: bars nest (the files of a run above the frames of
the current video), and lines printed while a bar is live go through `say`, which writes them
above the bars instead of through them. Elsewhere (CI, `> log`, services) a carriage-return bar
would write one multi-kilobyte line, so instead one line goes to stderr at every tenth of the work
(or every 30 s when the total is unknown) and one at the end.
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


_open: list = []  # the tqdm bars on the terminal now, oldest first


class _Tqdm:
    def __init__(self, bar) -> None:
        self.bar = bar
        _open.append(self)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            _open.remove(self)


def close_all() -> None:
    """Clear every live bar (innermost first): before the one line an interrupted command prints."""
    for bar in reversed(list(_open)):
        bar.close()


def say(message: str, *, file=None) -> None:
    """A line for the user (stdout by default): above the live bars when there are any, so a bar never
    splits it; a plain print otherwise."""
    out = file or sys.stdout
    if _open:
        from tqdm.auto import tqdm

        tqdm.write(message, file=out)
    else:
        print(message, file=out, flush=True)


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
        import shutil

        from tqdm.auto import tqdm

        # 3 columns short of the terminal: the "^C" the terminal echoes stays on the bar's line, so
        # Ctrl-C's clean-up clears the right lines.
        width = max(40, shutil.get_terminal_size().columns - 3)
        return _Tqdm(tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, ncols=width,
                          unit_scale=unit == "byte"))
    return _Lines(total, desc, unit, initial) if lines else _Off()


class stage:  # noqa: N801 - used as a context manager, named for what it shows
    """`with stage("opening the model"):` a step without a count (opening or converting a model, describing
    people), named on a terminal while it runs so the bars never sit silent; nothing elsewhere."""

    def __init__(self, desc: str, *, enabled: bool = True) -> None:
        self.desc, self.enabled, self.bar = desc, enabled and sys.stderr.isatty(), None

    def __enter__(self) -> stage:
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = _Tqdm(tqdm(total=None, desc=self.desc, bar_format="{desc}... {elapsed}", leave=False))
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def realtime(video_seconds: float, since: float) -> str:
    """Seconds of video per second of work on it since `since` (time.perf_counter()): the one real-time
    figure the frames bar, the annotation bar and the result line all show."""
    return f"{video_seconds / max(time.perf_counter() - since, 1e-6):.2f}x real time"


def ignore_interrupt() -> None:
    """In a worker process: Ctrl-C reaches the terminal's whole process group, but only the parent
    handles it (one line, see dfer.cli); workers ignore it instead of printing a traceback each."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
