"""Explicit per-axis read maps for ops that are not integer-stride windows.

Each function returns an int array (n_out, m): the input indices output position i reads, -1
for none. Only reads with a nonzero weight count (a bilinear sample exactly on a pixel reads one
pixel), so the maps are the exact support of each op. Frontends and the spec loader share them.
"""

from __future__ import annotations

import numpy as np

from .errors import SpecError
from .geometry import Window
from .limits import SMALLER, check_memory


def _guard(n_out: int, per_position: int, what: str) -> None:
    check_memory(n_out * per_position, f"the read map of {what} to {n_out} positions", SMALLER)


def _pack(rows: list[list[int]]) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def transposed(n_in: int, n_out: int, kernel: int, stride: int, dilation: int = 1,
               pad_before: int = 0) -> np.ndarray:
    """Transposed convolution: output o gets input i when o = i*stride - pad + m*dilation."""
    _guard(n_out, 40 * kernel, "a transposed convolution")
    o = np.arange(n_out)[:, None]
    m = np.arange(kernel)[None, :]
    num = o + pad_before - m * dilation
    i = num // stride
    ok = (num % stride == 0) & (i >= 0) & (i < n_in)
    return np.where(ok, i, -1)


def transposed_window(n_in: int, n_out: int, kernel: int, dilation: int = 1,
                      pad_before: int = 0) -> Window:
    """A stride-1 transposed convolution is a sliding window: output o reads inputs
    ``o - (d*(k-1) - p) + m*d``, the same set :func:`transposed` gives, with r, S, P defined
    (frameworks that write it as a convolution, JAX's ``conv_general_dilated`` without
    ``lhs_dilation``, see exactly this window)."""
    left = dilation * (kernel - 1) - pad_before
    return Window(kernel=kernel, dilation=dilation,
                  pad=(left, n_out - n_in - left + dilation * (kernel - 1)))


def nearest(n_in: int, n_out: int, scale: float | None = None, exact: bool = False) -> np.ndarray:
    """Nearest upsampling: ``floor(o*n_in/n_out)`` ('nearest'), or ``floor((o+0.5)*n_in/n_out)``
    ('nearest-exact'), in exact integer arithmetic. A framework that uses another scale (e.g.
    1/scale_factor in float32) passes ``scale``; its own rounding then applies.
    """
    _guard(n_out, 32, "nearest upsampling")
    o = np.arange(n_out, dtype=np.int64)
    if scale is None:
        src = ((2 * o + 1) * n_in) // (2 * n_out) if exact else (o * n_in) // n_out
    else:
        src = np.floor(((o + 0.5) if exact else o).astype(np.float32) * np.float32(scale))
    return np.minimum(src.astype(np.int64), n_in - 1)[:, None]


def linear(n_in: int, n_out: int, align_corners: bool, scale: float | None = None,
           taps: int = 2) -> np.ndarray:
    """(Bi/tri)linear (taps=2) or cubic (taps=4) interpolation along one axis.

    align_corners=True: ``src = o*(n_in-1)/(n_out-1)``; False: ``src = (o+0.5)*s - 0.5``
    (clamped at 0 for linear, PyTorch's half-pixel rule) with s = n_in/n_out in exact rational
    arithmetic, or the given ``scale`` in floating point. A tap is read only where its weight
    is nonzero; cubic reads ``floor(src)-1 .. floor(src)+2`` clamped to the border.
    """
    _guard(n_out, 256, "interpolation")
    o = np.arange(n_out, dtype=np.int64)
    if align_corners:  # src = num / den exactly
        num, den = o * (n_in - 1), np.int64(max(n_out - 1, 1))
    elif scale is None:
        num, den = (2 * o + 1) * n_in - n_out, np.int64(2 * n_out)
    else:
        num, den = None, None
    if num is not None:
        if taps == 2 and not align_corners:
            num = np.maximum(num, 0)
        base = num // den
        on_pixel = num % den == 0
    else:
        src = (o + 0.5) * scale - 0.5
        if taps == 2:
            src = np.maximum(src, 0.0)
        base = np.floor(src).astype(np.int64)
        on_pixel = src == base
    rows = []
    for i in range(n_out):
        if on_pixel[i]:
            r = [min(max(base[i], 0), n_in - 1)]
        elif taps == 2:
            r = [min(base[i], n_in - 1), min(base[i] + 1, n_in - 1)]
        else:
            r = [min(max(base[i] + t, 0), n_in - 1) for t in (-1, 0, 1, 2)]
        rows.append(sorted(set(r)))
    return _pack(rows)


def padded(n_in: int, before: int, after: int, mode: str) -> np.ndarray:
    """Padding (negative = crop) in mode constant / reflect / replicate / circular."""
    _guard(max(n_in + before + after, 0), 32, f"{mode} padding")
    j = np.arange(-before, n_in + after)
    if mode in ("constant", "zeros"):
        return np.where((j >= 0) & (j < n_in), j, -1)[:, None]
    if mode == "reflect":
        if max(before, after) >= n_in:
            raise SpecError(f"reflect padding {before, after} must be < input size {n_in}")
        j = np.abs(j)
        j = np.where(j >= n_in, 2 * (n_in - 1) - j, j)
    elif mode == "replicate":
        j = np.clip(j, 0, n_in - 1)
    elif mode == "circular":
        j = np.mod(j, n_in)
    else:
        raise SpecError(f"unknown padding mode {mode!r}; use constant, reflect, replicate "
                        "or circular")
    return j[:, None]


def pixel_shuffle(n_in: int, factor: int) -> np.ndarray:
    """Pixel shuffle along one axis: output o reads input o // factor."""
    _guard(n_in * factor, 16, "a pixel shuffle")
    return (np.arange(n_in * factor) // factor)[:, None]


def fit_window(reads: np.ndarray, n_in: int) -> Window | None:
    """The :class:`Window` whose reads are exactly ``reads`` (as sets per row), or None.

    Used where an op is not a window by construction (a constant matrix, a gather, a reshape,
    an interpolation) but reads like one, so that r, S, P stay defined
    (:meth:`analytic.graph.Graph.add` fits every explicit map, whatever the frontend).
    """
    rows = [sorted(set(int(v) for v in r if v >= 0)) for r in reads]
    n_out = len(rows)
    if n_out == 0:
        return None
    kernel = max(len(r) for r in rows)
    if kernel == 0:
        return None
    gaps = [b - a for r in rows for a, b in zip(r, r[1:])]
    dilation = min(gaps) if gaps else 1
    full = [i for i, r in enumerate(rows) if len(r) == kernel]
    if len(full) >= 2:
        (i0, i1) = full[0], full[-1]
        num = rows[i1][0] - rows[i0][0]
        if i1 == i0 or num % (i1 - i0):
            return None
        stride = num // (i1 - i0)
    else:
        stride = 1 if n_out == 1 else None
        if stride is None:  # one full row: take the stride from the row starts of neighbours
            starts = [(i, r[0]) for i, r in enumerate(rows) if r]
            diffs = {(b - a) // (j - i) for (i, a), (j, b) in zip(starts, starts[1:])
                     if (b - a) % (j - i) == 0}
            stride = max(diffs) if diffs else 1
    if stride < 1:
        return None
    i0 = full[0]
    before = i0 * stride - rows[i0][0]
    after = (n_out - 1) * stride - before + (kernel - 1) * dilation + 1 - n_in
    try:
        w = Window(kernel=kernel, stride=stride, dilation=dilation, pad=(before, after))
    except SpecError:
        return None
    mine = w.reads(n_in, n_out)
    for r, m in zip(rows, mine):
        if r != sorted(int(v) for v in m if v >= 0):
            return None
    return w
