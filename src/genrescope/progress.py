"""The one progress display of commands that work through many files (features, embed, tag,
learn, predict of several files): ``[#####.......] 12/40 files  2.10 files/s  ETA 0:11`` on
stderr, redrawn in place on a terminal, a plain line every ``every`` files (and at the end)
when stderr is a file or a pipe, and nothing when disabled."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class Progress:
    """Files done of ``total``, their rate and the time left.

    Parameters
    ----------
    total : int
        Files to do.
    enabled : bool
        False: silent.
    what : str
        A word in front of the bar ("embedding"), or nothing.
    every : int
        Off a terminal, a line every ``every`` files (0: only the last).
    """

    def __init__(self, total: int, enabled: bool = True, *, what: str = "", every: int = 50):
        self.total, self.n, self.what, self.every = total, 0, what, every
        self.enabled = enabled and total > 0
        self.t0 = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, k: int = 1, note: str = "") -> None:
        """``k`` more files done; ``note`` goes at the end of the line (e.g. seconds per file)."""
        self.n += k
        if not self.enabled:
            return
        now = time.perf_counter()
        done = self.n >= self.total
        if self.tty and not done and now - self.last < 0.2:
            return
        if not self.tty and not done and (not self.every or self.n % self.every):
            return
        self.last = now
        print(("\r" if self.tty else "") + self.line(now, note), end="" if self.tty and not done else "\n",
              file=sys.stderr, flush=True)

    def line(self, now: float, note: str = "") -> str:
        width = 24
        filled = int(width * min(self.n, self.total) / self.total)
        rate = self.n / max(now - self.t0, 1e-9)
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        head = f"{self.what} " if self.what else ""
        tail = f"  {note}" if note else ""
        return (f"{head}[{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total} files  {rate:.2f} files/s  "
                f"ETA {int(eta // 60)}:{int(eta % 60):02d}{tail}   ")

    def close(self) -> None:
        """End a line a terminal left open (a run stopped before the last file)."""
        if self.enabled and self.tty and self.n < self.total:
            print(file=sys.stderr, flush=True)


def progress_iter(items: Iterable[T], total: int, enabled: bool = True, **kw) -> Iterator[T]:
    """``items`` passed through, one :meth:`Progress.step` each."""
    bar = Progress(total, enabled, **kw)
    try:
        for item in items:
            yield item
            bar.step()
    finally:
        bar.close()
