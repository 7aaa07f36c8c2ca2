"""Refuse work that would not fit in memory before allocating it, with a clear error.

Exact regions hold, per node, two int64 values per input axis for every position; explicit
read maps one int64 per read; a framework frontend an example input. At a huge input size
(a spec's ``input`` can be up to 2**31 per axis) these would exhaust memory and the operating
system would kill the process without a word. :func:`check_memory` raises
:class:`~analytic.errors.ResourceError` instead, naming what needed the memory and what to do.
"""

from __future__ import annotations

import os

from .errors import ResourceError

MEMORY_LIMIT: int | None = None  # bytes; None: half of this machine's memory (8 GiB if unknown)


SMALLER = ("Analyze at a smaller input size: the analysis is exact at any size, and r, S, P do "
           "not depend on it (except through TF 'SAME' padding).")


def memory_limit() -> int:
    if MEMORY_LIMIT is not None:
        return int(MEMORY_LIMIT)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_memory(nbytes: int, what: str, hint: str) -> None:
    """Raise :class:`ResourceError` when ``nbytes`` is over :func:`memory_limit`."""
    limit = memory_limit()
    if nbytes > limit:
        raise ResourceError(f"{what} would need about {_gib(nbytes)} of memory, more than the "
                            f"limit of {_gib(limit)} (half of this machine's memory; set "
                            f"analytic.limits.MEMORY_LIMIT to change it). {hint}")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**27 else f"{n / 2**20:.0f} MiB"
