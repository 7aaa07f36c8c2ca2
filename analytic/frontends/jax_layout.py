"""What the JAX frontend knows about each jaxpr variable, and how nodes of the IR are made.

A variable is one of three things:

- :class:`Const`: computable without the input (literals, closed-over arrays, ``iota``, and
  anything computed only from those); its value is evaluated on demand, e.g. for the
  interpolation matrix of ``jax.image.resize`` or the indices of a ``gather``.
- :class:`Weight`: independent of the input but not known (parameters passed as arguments);
  a weight is treated as dense: never looked at.
- :class:`Data`: depends on the input. It is a view of one IR node: every array dimension is a
  list of *factors* (major to minor), each either a slice of digits of one spatial axis of the
  node (``(axis, size, step)``: index along the axis = sum of digit*step) or a non-spatial
  factor (``(None, size, 1)``: batch, channels, anything positions do not depend on). Reshapes
  and transposes only re-factor, so ``x.reshape(n, h*w, c)`` and back is exact, pixel shuffle
  and space-to-depth are exact, and nothing is made up. Node axes of size 1 that no dimension
  holds (``x[:, 3]`` keeps row 3 as a size-1 axis) are *phantom* axes, carried along.

Rules create nodes with :meth:`Builder.emit` from operands in *simple* form (every dimension
one whole spatial axis or non-spatial); :meth:`Builder.simple` turns a factored view into a new
node with explicit reads (an axis is placed on the dimension holding its major digits; its
other digits become offsets; a second axis merged into the same dimension is reduced, i.e.
global, which is a sound over-approximation, e.g. ``concatenate`` of a class token to
flattened (h*w) tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

from ..geometry import Window
from ..graph import AxisMap, Edge, Graph, Node
from .jax_maps import Read, as_read

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
    """A view of IR node ``node``: per array dimension, its factors (see the module doc)."""

    node: str
    dims: tuple[Dim, ...]

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


# ---- the builder --------------------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    """Where a node comes from: primitive, user path (name stack), source line."""

    prim: str
    path: str = ""
    source: str = ""


@dataclass
class Builder:
    """Owns the graph under construction; names nodes; tracks each node axis's input axis."""

    graph: Graph
    origin: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def shape(self, node: str) -> tuple[int, ...]:
        return self.graph[node].shape

    def add(self, site: Site, inputs: Sequence[tuple[str, Edge]], shape: Sequence[int],
            origin: Sequence[int | None], op: str | None = None) -> str:
        op = op or site.prim
        k = self.counts.get(op, 0)
        self.counts[op] = k + 1
        name = f"{op}_{k}"
        self.graph.add(Node(name, op, tuple(n for n, _ in inputs), tuple(e for _, e in inputs),
                            tuple(int(s) for s in shape), path=site.path or name,
                            source=site.source))
        self.origin[name] = tuple(origin)
        return name

    def phantoms(self, x: Data) -> list[int]:
        held = set(x.axes())
        return [a for a in range(len(self.shape(x.node))) if a not in held]

    def is_simple(self, x: Data) -> bool:
        nshape = self.shape(x.node)
        for d in x.dims:
            spatial = [f for f in d if f[0] is not None]
            if spatial and (len(d) != 1 or d[0][2] != 1 or d[0][1] != nshape[d[0][0]]):
                return False
        return True

    # -- making simple ------------------------------------------------------------------------
    def simple(self, x: Data, site: Site) -> Data:
        """``x`` with every dimension one whole spatial axis or non-spatial (module doc)."""
        if self.is_simple(x):
            return x
        where: dict[int, list[tuple[int, int, int, int]]] = {}
        for k, d in enumerate(x.dims):
            for pos, (a, size, step) in enumerate(d):
                if a is not None:
                    where.setdefault(a, []).append((k, pos, size, step))
        home = {a: max(lst, key=lambda t: t[3])[0] for a, lst in where.items()}
        reads: list[tuple[int, Read] | None] = []
        for k, d in enumerate(x.dims):
            mine = [a for a in dict.fromkeys(f[0] for f in d if f[0] is not None)
                    if home[a] == k]
            if not mine:
                reads.append(None)
                continue
            a = mine[0]
            sizes = [f[1] for f in d]
            digits = np.unravel_index(np.arange(prod(sizes)), sizes) if sizes else ()
            base = np.zeros(prod(sizes), dtype=np.int64)
            for (fa, _, step), dig in zip(d, digits):
                if fa == a:
                    base = base + dig * step
            offsets = np.zeros(1, dtype=np.int64)
            for kk, _, size, step in where[a]:
                if kk != k:
                    offsets = (offsets[:, None] + np.arange(size)[None, :] * step).ravel()
            explicit = base[:, None] + np.unique(offsets)[None, :]
            reads.append((a, as_read(explicit, self.shape(x.node)[a])))
        nshape = self.shape(x.node)
        maps: list[AxisMap | None] = []
        shape: list[int] = []
        origin: list[int | None] = []
        dims: list[Dim] = []
        for k, r in enumerate(reads):
            n = x.shape[k]
            if r is None:
                dims.append(plain_dim(None, n))
                continue
            a, how = r
            dims.append(plain_dim(len(shape), n))
            maps.append(_axis_map(a, how, "reshape"))
            shape.append(n)
            origin.append(self.origin[x.node][a])
        for a in self.phantoms(x):
            if nshape[a] == 1:
                maps.append(AxisMap.identity(a))
                shape.append(1)
                origin.append(self.origin[x.node][a])
        name = self.add(site, [(x.node, Edge(tuple(maps)))], shape, origin, op="reshape")
        return Data(name, tuple(dims))

    # -- new nodes ----------------------------------------------------------------------------
    def emit(self, site: Site, operands: Sequence[Data], out_shape: Sequence[int],
             reads: Sequence[Sequence[tuple[int, Read | None] | None]],
             pinned: Sequence[tuple[int, int, np.ndarray]] = (), kind: str = "window",
             op: str | None = None) -> Data:
        """A new node reading ``operands``.

        ``reads[i][k]``: how output dimension k reads operand i: ``(operand dim, Window or
        explicit (n_out, m) reads, or None for the identity)``, or None (no relation: the
        operand is broadcast along k). Spatial axes of an operand that no output dimension
        reads are reduced (global), except phantom axes, which are carried. ``pinned``:
        ``(operand, dim, reads (1, m))`` for a spatial dimension that disappears but is read
        at fixed indices (``x[:, 3]``). Factored dimensions read by the identity keep their
        factors (flattened tokens stay two axes); any other read makes the operand simple.
        """
        xs = list(operands)
        pinned_ops = {i for i, _, _ in pinned}
        for i, x in enumerate(xs):
            if not self.is_simple(x) and (i in pinned_ops or not self._passes(x, reads[i],
                                                                               out_shape)):
                xs[i] = self.simple(x, site)
        try:
            return self._emit(site, xs, out_shape, reads, pinned, kind, op)
        except _Mismatch:  # factored operands that disagree on a dimension's structure
            xs = [self.simple(x, site) for x in xs]
            return self._emit(site, xs, out_shape, reads, pinned, kind, op)

    def _simple_dim(self, x: Data, d: int) -> bool:
        f = x.dims[d]
        spatial = [g for g in f if g[0] is not None]
        return not spatial or (len(f) == 1 and f[0][2] == 1
                               and f[0][1] == self.shape(x.node)[f[0][0]])

    def _passes(self, x: Data, row, out_shape) -> bool:
        """Whether x's factored dims can stay factored: each is read by the identity or not
        at all, and each of their axes is wholly kept or wholly reduced."""
        read = {r[0] for r in row if r is not None}
        identity = {r[0] for k, r in enumerate(row)
                    if r is not None and r[1] is None and out_shape[k] == x.shape[r[0]]}
        axes: set[int] = set()
        for d in range(x.ndim):
            if self._simple_dim(x, d):
                continue
            if d in read and d not in identity:
                return False
            axes |= {f[0] for f in x.dims[d] if f[0] is not None}
        for a in axes:
            holders = [e for e in range(x.ndim) if a in {f[0] for f in x.dims[e]}]
            if not (all(e in identity for e in holders) or all(e not in read for e in holders)):
                return False
        return True

    def _emit(self, site, xs, out_shape, reads, pinned, kind, op) -> Data:
        maps: list[list[AxisMap | None]] = []  # per node axis, per operand
        shape: list[int] = []
        origin: list[int | None] = []
        dims: list[Dim] = []
        n_ops = len(xs)
        slots: list[dict[int, int]] = [{} for _ in xs]  # operand axis -> node axis (factored)

        def new_axis(size: int, org: int | None) -> int:
            maps.append([None] * n_ops)
            shape.append(size)
            origin.append(org)
            return len(shape) - 1

        for k, n in enumerate(out_shape):
            rows = [(i, reads[i][k] if k < len(reads[i]) else None) for i in range(n_ops)]
            rows = [(i, r) for i, r in rows if r is not None and xs[i].axis(r[0]) is not None]
            factored = [(i, r[0]) for i, r in rows if not self._simple_dim(xs[i], r[0])]
            if factored:
                if len(factored) != len(rows):
                    raise _Mismatch
                i0, d0 = factored[0]
                ref = xs[i0].dims[d0]
                out: list[Factor] = []
                for a, size, step in ref:
                    if a is None:
                        out.append((None, size, 1))
                        continue
                    if a not in slots[i0]:
                        j = new_axis(self.shape(xs[i0].node)[a], self.origin[xs[i0].node][a])
                        maps[j][i0] = AxisMap.identity(a)
                        slots[i0][a] = j
                    out.append((slots[i0][a], size, step))
                for i, d in factored[1:]:
                    mine = xs[i].dims[d]
                    if [(f[1], f[2], f[0] is None) for f in mine] != [
                            (f[1], f[2], f[0] is None) for f in ref]:
                        raise _Mismatch
                    for (a, _, _), (j, _, _) in zip(mine, out):
                        if a is None:
                            continue
                        assert j is not None
                        if slots[i].setdefault(a, j) != j or (
                                maps[j][i] is not None and maps[j][i].src != a):
                            raise _Mismatch
                        maps[j][i] = AxisMap.identity(a)
                dims.append(tuple(out))
                continue
            if not rows:
                dims.append(plain_dim(None, n))
                continue
            j = None
            for i, r in rows:
                a = xs[i].axis(r[0])
                assert a is not None
                if j is None:
                    j = new_axis(n, self.origin[xs[i].node][a])
                maps[j][i] = _axis_map(a, r[1], kind)
            dims.append(plain_dim(j, n))
        for i, d, explicit in pinned:
            a = xs[i].axis(d)
            if a is not None:
                j = new_axis(1, self.origin[xs[i].node][a])
                maps[j][i] = AxisMap(a, None, np.asarray(explicit).reshape(1, -1), kind)
        for i, x in enumerate(xs):
            used: set[int] = set()
            for a in self.phantoms(x):
                if self.shape(x.node)[a] != 1:
                    continue
                org = self.origin[x.node][a]
                # join a size-1 axis of the same input axis (another operand's), else a new one
                slot = next((j for j in range(len(shape)) if shape[j] == 1 and j not in used
                             and origin[j] == org and maps[j][i] is None), None)
                if slot is None:
                    slot = new_axis(1, org)
                maps[slot][i] = AxisMap.identity(a)
                used.add(slot)
        # every operand is an input; its axes that no column reads are reduced (global)
        inputs = [(x.node, Edge(tuple(col[i] for col in maps))) for i, x in enumerate(xs)]
        name = self.add(site, inputs, shape, origin, op=op)
        return Data(name, tuple(dims))

    def elementwise(self, site: Site, operands: Sequence[Data], out_shape: Sequence[int],
                    op: str | None = None) -> Data:
        """Positions read the same positions of every operand (numpy broadcasting)."""
        reads = []
        for x in operands:
            lead = len(out_shape) - x.ndim
            row: list[tuple[int, Read | None] | None] = []
            for k, n in enumerate(out_shape):
                d = k - lead
                if d < 0:
                    row.append(None)
                elif x.shape[d] == n:
                    row.append((d, None))
                elif x.axis(d) is not None:  # a spatial axis of size 1, stretched
                    row.append((d, np.zeros((n, 1), dtype=np.int64)))
                else:
                    row.append(None)
            reads.append(row)
        return self.emit(site, operands, out_shape, reads, kind="broadcast", op=op)


class _Mismatch(Exception):
    """Operands disagree on how a dimension is factored: make them simple and retry."""


def _axis_map(a: int, how: Read | None, kind: str) -> AxisMap:
    if how is None:
        return AxisMap.identity(a)
    if isinstance(how, Window):
        return AxisMap(a, how)
    return AxisMap(a, None, np.asarray(how, dtype=np.int64), kind)
