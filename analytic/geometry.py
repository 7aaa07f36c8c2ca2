"""Per-axis geometry: sliding windows, TF 'SAME' padding, single-path formulas of the paper.

Every function here works on one spatial axis; callers hold one value per axis in tuples.
Equation numbers refer to Araujo et al., "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import SpecError


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """A sliding window along one spatial axis.

    Output index i reads input indices ``i*stride - pad[0] + m*dilation`` for m in
    ``range(kernel)``. ``pad`` is (before, after) in input elements; a negative pad is a crop.
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for field, low in (("kernel", 1), ("stride", 1), ("dilation", 1)):
            value = getattr(self, field)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise SpecError(f"window {field} must be an integer >= {low}, got {value!r}")
        if len(self.pad) != 2 or not all(isinstance(p, (int, np.integer)) for p in self.pad):
            raise SpecError(f"window pad must be (before, after) integers, got {self.pad!r}")

    @property
    def span(self) -> int:
        """Effective kernel size ``dilation*(kernel-1) + 1``."""
        return self.dilation * (self.kernel - 1) + 1

    def out_size(self, n: int, ceil_mode: bool = False) -> int:
        """Output length on an input of length n (floor division, or ceil as in pooling)."""
        extent = n + self.pad[0] + self.pad[1] - self.span
        if extent < 0:
            return 0
        if ceil_mode:
            out = -(-extent // self.stride) + 1
            # PyTorch/Caffe rule: the last window must start inside the input or left padding.
            if (out - 1) * self.stride >= n + self.pad[0]:
                out -= 1
            return out
        return extent // self.stride + 1

    def reads(self, n_in: int, n_out: int) -> np.ndarray:
        """Input indices read by each output position, shape (n_out, kernel); -1 = padding."""
        from .limits import SMALLER, check_memory
        check_memory(24 * n_out * self.kernel, f"the reads of a window (kernel {self.kernel}) "
                     f"at {n_out} positions", SMALLER)
        i = np.arange(n_out)[:, None] * self.stride - self.pad[0]
        idx = i + np.arange(self.kernel)[None, :] * self.dilation
        return np.where((idx >= 0) & (idx < n_in), idx, -1)


def same_pad(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for an input of length n.

    ``pad_total = max(span - (n % stride or stride), 0)``; the extra element goes after.
    """
    span = dilation * (kernel - 1) + 1
    total = max(span - (n % stride if n % stride else stride), 0)
    return (total // 2, total - total // 2)


def same_pad_depends_on_size(kernel: int, stride: int = 1, dilation: int = 1) -> bool:
    """Whether TF 'SAME' left padding changes with the input length (only when stride > 1)."""
    return len({same_pad(n, kernel, stride, dilation)[0] for n in range(1, 2 * stride + 1)}) > 1


# ---- single path: closed forms (paper eq. 2, 5, 6, 11) and recurrences (eq. 1, 9, 10) ----


def _check_chain(windows: Sequence[Window]) -> None:
    if not all(isinstance(w, Window) for w in windows):
        raise SpecError("a single path is a sequence of Window objects")


def chain_closed_form(windows: Sequence[Window]) -> tuple[int, int, int]:
    """(r0, S0, P0) of a chain, layer 1 first, by the closed forms (eq. 2 and the S, P sums)."""
    _check_chain(windows)
    size, padding, prod = 1, 0, 1
    for w in windows:
        size += (w.span - 1) * prod
        padding += w.pad[0] * prod
        prod *= w.stride
    return size, prod, padding


def chain_recurrence(windows: Sequence[Window]) -> tuple[int, int, int]:
    """(r0, S0, P0) of a chain by the backward recurrences from r_L = 1, S_L = 1, P_L = 0."""
    _check_chain(windows)
    size, stride, padding = 1, 1, 0
    for w in reversed(windows):
        size = w.stride * size + (w.span - w.stride)  # eq. 1
        padding = w.stride * padding + w.pad[0]  # eq. 10
        stride = w.stride * stride  # eq. 9
    return size, stride, padding


def region(x, size: int, stride: int, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """Unclipped input region [u0, v0] of output feature(s) x (eq. 8 and 7); vectorized."""
    u = np.asarray(x) * stride - padding
    return u, u + size - 1


def center(x, size: int, stride: int, padding: int) -> np.ndarray:
    """Center of the input region of output feature(s) x (eq. 11)."""
    return np.asarray(x) * stride - padding + (size - 1) / 2


def feature_at(c, size: int, stride: int, padding: int) -> np.ndarray:
    """Inverse of :func:`center`: the (fractional) feature index whose region is centered at c."""
    return (np.asarray(c) + padding - (size - 1) / 2) / stride
