"""Per-axis read maps for the JAX frontend, in plain numpy (no jax import).

Each function describes how one output axis of a lax primitive reads one input axis: either a
:class:`Window` (the paper's view: r, S, P defined) or an explicit (n_out, m) array of input
indices, -1 for none (see :class:`analytic.graph.AxisMap`). Parameters are the primitive's own
(``padding`` pairs, ``base_dilation`` = lhs dilation, start/limit/stride).
"""

from __future__ import annotations

import numpy as np

from ..geometry import Window
from ..indexmaps import fit_window

Read = Window | np.ndarray  # how one output axis reads its source axis


def dilated_window(n_in: int, n_out: int, kernel: int, stride: int, dilation: int,
                   pad: tuple[int, int], base_dilation: int = 1) -> Read:
    """A lax window (conv, reduce_window) along one axis.

    Output i reads the dilated, padded input at ``i*stride - pad[0] + m*dilation``. With
    ``base_dilation`` b > 1 (transposed convolution: ``lhs_dilation``), the input is first
    spread out with b-1 holes between elements: only positions divisible by b are real.
    """
    w = Window(kernel=int(kernel), stride=int(stride), dilation=int(dilation),
               pad=(int(pad[0]), int(pad[1])))
    if base_dilation == 1:
        return w
    q = (np.arange(n_out)[:, None] * stride - pad[0]
         + np.arange(kernel)[None, :] * dilation)
    ok = (q % base_dilation == 0) & (q >= 0) & (q // base_dilation < n_in)
    return np.where(ok, q // base_dilation, -1)


def shifted(n_in: int, n_out: int, offset: int, stride: int = 1) -> Window:
    """Output i reads input ``offset + i*stride`` (slice, crop, constant pad, concat piece)."""
    return Window(kernel=1, stride=int(stride),
                  pad=(-int(offset), int((n_out - 1) * stride + offset + 1 - n_in)))


def interior_pad(n_in: int, lo: int, hi: int, interior: int) -> Read:
    """``lax.pad`` along one axis: lo/hi (negative = crop) and ``interior`` holes between."""
    if interior == 0:
        return Window(pad=(int(lo), int(hi)))
    n_out = lo + hi + n_in + (n_in - 1) * interior if n_in else lo + hi
    q = np.arange(n_out) - lo
    step = interior + 1
    ok = (q >= 0) & (q % step == 0) & (q // step < n_in)
    return np.where(ok, q // step, -1)[:, None]


def reversed_axis(n: int) -> np.ndarray:
    """``rev``: output i reads n-1-i."""
    return (n - 1 - np.arange(n))[:, None]


def tiled(n_in: int, reps: int) -> np.ndarray:
    """``tile``: output i reads i mod n."""
    return (np.arange(n_in * reps) % n_in)[:, None]


def cumulative(n: int, reverse: bool) -> np.ndarray:
    """``cumsum`` and friends: output i reads 0..i (or i..n-1 when reversed)."""
    j = np.arange(n)[None, :]
    i = np.arange(n)[:, None]
    return np.where(j >= i if reverse else j <= i, j, -1)


def whole(n_in: int, n_out: int) -> np.ndarray:
    """Every output reads the whole axis (sort, top_k, fft along a spatial axis)."""
    return np.broadcast_to(np.arange(n_in), (n_out, n_in)).copy()


def from_sets(rows: list[set[int]] | list[list[int]]) -> np.ndarray:
    """Explicit reads from a list of index sets, one per output position (-1 padded)."""
    rows = [sorted(int(v) for v in r) for r in rows]
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def as_read(reads: np.ndarray, n_in: int) -> Read:
    """A fitted window when the reads are one, else the explicit reads."""
    w = fit_window(reads, n_in)
    return w if w is not None else np.asarray(reads, dtype=np.int64)
