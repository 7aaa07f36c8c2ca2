"""What the JAX frontend knows about each jaxpr variable, and the layout algebra on it.

A variable is one of three things:

- :class:`Const`: computable without the input (literals, closed-over arrays, ``iota``, and
  anything computed only from those); its value is evaluated on demand, e.g. for the
  interpolation matrix of ``jax.image.resize`` or the indices of a ``gather``.
- :class:`Weight`: independent of the input but not known (parameters passed as arguments);
  a weight is treated as dense: never looked at.
- :class:`Data`: depends on the input. It is a view of one IR node: every array dimension is a
  list of *factors* (major to minor), each either a slice of digits of one spatial axis of the
  node (``(axis, size, step)``: index along the axis = sum of digit*step; step 0 = a size-1
  axis broadcast along the dimension) or a non-spatial factor (``(None, size, 1)``: batch,
  channels, anything positions do not depend on). Reshapes and transposes only re-factor
  (functions below, no new node), so ``x.reshape(n, h*w, c)`` and back is exact, pixel shuffle
  and space-to-depth are exact, and nothing is made up. Node axes of size 1 that no dimension
  holds (``x[:, 3]`` keeps row 3 as a size-1 axis) are *phantom* axes, carried along.

Nodes are made by ``jax_builder.Builder``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

Factor = tuple[int | None, int, int]  # (node axis or None, size, step)
Dim = tuple[Factor, ...]


class Const:
    """A value computable without the input: ``fn(*args' values)``, or a given value.

    Evaluated once, on demand; the whole cone of constant equations behind it is compiled as
    one ``jax.jit`` program (op-by-op evaluation would compile every primitive separately).
    """

    def __init__(self, shape: Sequence[int], fn: Callable[..., Any] | None = None,
                 args: Sequence[Const] = (), value: Any = None):
        self.shape = tuple(shape)
        self.fn = fn
        self.args = tuple(args)
        self._raw = value
        self._done = fn is None

    @classmethod
    def of(cls, value: Any) -> Const:
        return cls(tuple(np.shape(value)), value=value)

    @property
    def raw(self) -> Any:
        """The value as computed (a jax or numpy array, or a Python scalar)."""
        if not self._done:
            self._raw = _evaluate(self)
            self._done = True
        return self._raw

    @property
    def value(self) -> np.ndarray:
        return np.asarray(self.raw)


def _evaluate(target: Const) -> Any:
    """Evaluate the cone of constant equations behind ``target`` in one jitted program."""
    import jax

    order: list[Const] = []
    seen: set[int] = set()
    stack: list[tuple[Const, bool]] = [(target, False)]
    while stack:
        c, expanded = stack.pop()
        if expanded:
            order.append(c)
            continue
        if id(c) in seen or c._done:
            continue
        seen.add(id(c))
        stack.append((c, True))
        stack.extend((a, False) for a in c.args if not a._done)

    def run() -> Any:
        vals: dict[int, Any] = {}
        for c in order:
            assert c.fn is not None
            vals[id(c)] = c.fn(*[vals[id(a)] if id(a) in vals else a._raw for a in c.args])
        return vals[id(target)]

    return jax.jit(run)()


@dataclass(frozen=True)
class Weight:
    """Independent of the input, value unknown (a parameter): treated as dense."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class Data:
    """A view of IR node ``node``: per array dimension, its factors (see the module doc).

    ``slots``: where phantom size-1 axes were when a reduction removed their dimension,
    ``(node axis, dimension, rank)``: a ``broadcast_in_dim`` straight after it that puts back
    a size-1 dimension there (``keepdims=True``) re-attaches the axis, so windows along that
    dimension apply to it (a 1-pixel map padded by a later convolution)."""

    node: str
    dims: tuple[Dim, ...]
    slots: tuple[tuple[int, int, int], ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(prod(f[1] for f in d) for d in self.dims)

    @property
    def ndim(self) -> int:
        return len(self.dims)

    def axes(self) -> list[int]:
        """Node axes held by some dimension, in order of first appearance."""
        return list(dict.fromkeys(f[0] for d in self.dims for f in d if f[0] is not None))

    def axis(self, k: int) -> int | None:
        """The node axis of dimension k in simple form (None: non-spatial)."""
        spatial = [f[0] for f in self.dims[k] if f[0] is not None]
        return spatial[0] if spatial else None


Value = Const | Weight | Data


def norm_dim(factors: Sequence[Factor], keep_unit: bool = True) -> Dim:
    """Drop size-1 non-spatial factors, merge neighbours that continue each other."""
    out: list[Factor] = []
    for a, size, step in factors:
        if size == 1 and (a is None or not keep_unit):
            continue
        if out:
            pa, psize, pstep = out[-1]
            if a is None and pa is None:
                out[-1] = (None, psize * size, 1)
                continue
            if a is not None and pa == a and size > 1 and pstep == step * size and step:
                out[-1] = (a, psize * size, step)
                continue
        out.append((a, size, step if a is not None else 1))
    return tuple(out)


def plain_dim(axis: int | None, size: int) -> Dim:
    """A simple dimension: one whole spatial axis, or non-spatial."""
    if axis is None:
        return ((None, size, 1),) if size != 1 else ()
    return ((axis, size, 1),)


# ---- layout primitives: re-factor without new nodes ----------------------------------------

def transpose(x: Data, perm: Sequence[int]) -> Data:
    return Data(x.node, tuple(x.dims[p] for p in perm))


def squeeze(x: Data, dims: Sequence[int]) -> Data:
    drop = {d % x.ndim for d in dims}
    return Data(x.node, tuple(d for k, d in enumerate(x.dims) if k not in drop))


def broadcast_in_dim(x: Data, shape: Sequence[int], bdims: Sequence[int]) -> Data:
    """New dims are not spatial; a stretched size-1 spatial dim becomes a step-0 factor
    (every position reads index 0 of that axis)."""
    dims: list[Dim] = []
    for k, n in enumerate(shape):
        if k in bdims:
            d = x.dims[list(bdims).index(k)]
            if prod(f[1] for f in d) == n:
                dims.append(d)
                continue
            spatial = [f[0] for f in d if f[0] is not None]
            if spatial and n > 1:
                dims.append(((spatial[0], n, 0),))
                continue
        dims.append(plain_dim(None, n))
    held = {f[0] for d in dims for f in d if f[0] is not None}
    for a, d, rank in x.slots:
        if rank == len(shape) and d not in bdims and shape[d] == 1 and a not in held:
            dims[d] = ((a, 1, 1),)
            held.add(a)
    return Data(x.node, tuple(dims))


def reshape(x: Data, new_sizes: Sequence[int]) -> Data | None:
    """Re-factor into ``new_sizes``; None when a factor would need a non-dividing split.

    Size-1 spatial axes (a cropped row, a pooled map) are re-attached where they were: to a
    non-spatial dim starting at the same flat position, as a step-0 factor (every position
    reads index 0 of the axis, which is exact), else to a size-1 dim there, else phantom.
    """
    queue = [f for d in x.dims for f in d if f[1] > 1]
    dims: list[Dim] = []
    for size in new_sizes:
        cur: list[Factor] = []
        have = 1
        while have < size:
            if not queue:
                return None
            a, fsize, step = queue.pop(0)
            if size % (have * fsize) == 0:
                cur.append((a, fsize, step))
                have *= fsize
                continue
            need = size // have
            if size % have or fsize % need:
                return None
            rest = fsize // need
            cur.append((a, need, step * rest))
            queue.insert(0, (a, rest, step))
            have *= need
        if have != size:
            return None
        dims.append(norm_dim(cur))
    if queue:
        return None
    in_prefix = np.cumprod([1, *x.shape])
    out_prefix = np.cumprod([1, *new_sizes])
    for d, dim in enumerate(x.dims):
        for a, size, _ in dim:
            if a is None or size != 1:
                continue
            run_in = [e for e in range(x.ndim) if in_prefix[e] == in_prefix[d]]
            run_out = [k for k in range(len(new_sizes)) if out_prefix[k] == in_prefix[d]]
            place = run_in.index(d)
            for k in sorted(run_out, key=lambda k: abs(run_out.index(k) - place)):
                if new_sizes[k] > 1 and all(f[0] is None for f in dims[k]):
                    dims[k] = ((a, new_sizes[k], 0),)
                    break
                if new_sizes[k] == 1 and not dims[k]:
                    dims[k] = ((a, 1, 1),)
                    break
    return Data(x.node, tuple(dims))
