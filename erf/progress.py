"""A dependency-free progress bar on stderr (redrawn in place at most ten times a second)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``Progress(total, label)``; ``update(n)`` after each step; ``close()`` at the end."""

    def __init__(self, total: int, label: str, enabled: bool = True, width: int = 28,
                 stream: TextIO | None = None):
        self.total, self.label, self.enabled, self.width = max(total, 1), label, enabled, width
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self.last >= 0.1 or self.done >= self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0)
        filled = int(frac * self.width)
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = f"{left:5.0f}s left" if left != float("inf") else ""
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{self.done}/{self.total} {rate:7.2f}/s {eta}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
