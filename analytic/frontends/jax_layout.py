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
    """A value computable without the input; evaluated once, on demand."""

    def __init__(self, shape: tuple[int, ...], compute: Callable[[], Any]):
        self.shape = tuple(shape)
        self._compute: Callable[[], Any] | None = compute
        self._raw: Any = None

    @classmethod
    def of(cls, value: Any) -> Const:
        return cls(tuple(np.shape(value)), lambda: value)

    @property
    def raw(self) -> Any:
        """The value as computed (a jax or numpy array, or a Python scalar)."""
        if self._compute is not None:
            self._raw = self._compute()
            self._compute = None
        return self._raw

    @property
    def value(self) -> np.ndarray:
        return np.asarray(self.raw)


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
            if a is not None and pa == a and size > 1 and pstep == step * size:
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
    dims: list[Dim] = []
    for k, n in enumerate(shape):
        if k in bdims:
            d = x.dims[list(bdims).index(k)]
            if prod(f[1] for f in d) == n:
                dims.append(d)
                continue
        dims.append(plain_dim(None, n))  # a new or stretched size-1 dim: not spatial
    return Data(x.node, tuple(dims))


def reshape(x: Data, new_sizes: Sequence[int]) -> Data | None:
    """Re-factor into ``new_sizes``; None when a factor would need a non-dividing split."""
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
        """A new node from simple operands.

        ``reads[i][k]``: how output dimension k reads operand i: ``(operand dim, Window or
        explicit (n_out, m) reads or None for identity)``, or None (no relation: broadcast).
        Spatial axes of an operand that no output dimension reads are reduced (global), except
        phantom axes, which are carried. ``pinned``: ``(operand, dim, reads (1, m))`` for a
        spatial dimension that disappears but is read at fixed indices (``x[:, 3]``).
        """
        maps: list[list[AxisMap | None]] = []  # per node axis, per operand
        shape: list[int] = []
        origin: list[int | None] = []
        dims: list[Dim] = []
        n_ops = len(operands)
        for k, n in enumerate(out_shape):
            col: list[AxisMap | None] = [None] * n_ops
            org = None
            for i, x in enumerate(operands):
                r = reads[i][k] if k < len(reads[i]) else None
                if r is None:
                    continue
                a = x.axis(r[0])
                if a is None:
                    continue
                col[i] = _axis_map(a, r[1], kind)
                org = self.origin[x.node][a] if org is None else org
            if any(m is not None for m in col):
                dims.append(plain_dim(len(shape), n))
                maps.append(col)
                shape.append(n)
                origin.append(org)
            else:
                dims.append(plain_dim(None, n))
        for i, d, explicit in pinned:
            a = operands[i].axis(d)
            if a is None:
                continue
            col = [None] * n_ops
            col[i] = AxisMap(a, None, np.asarray(explicit).reshape(1, -1), kind)
            maps.append(col)
            shape.append(1)
            origin.append(self.origin[operands[i].node][a])
        carried = len(shape)
        for i, x in enumerate(operands):
            used: set[int] = set()
            for a in self.phantoms(x):
                if self.shape(x.node)[a] != 1:
                    continue
                org = self.origin[x.node][a]
                slot = next((j for j in range(carried, len(shape))
                             if j not in used and origin[j] == org and maps[j][i] is None),
                            None)
                if slot is None:
                    slot = len(shape)
                    maps.append([None] * n_ops)
                    shape.append(1)
                    origin.append(org)
                maps[slot][i] = AxisMap.identity(a)
                used.add(slot)
        inputs = []
        for i, x in enumerate(operands):
            if all(col[i] is None for col in maps) and not _reads_any(x, self):
                continue  # an operand without spatial axes: broadcast to every position
            inputs.append((x.node, Edge(tuple(col[i] for col in maps))))
        name = self.add(site, inputs, shape, origin, op=op)
        return Data(name, tuple(dims))

    def elementwise(self, site: Site, operands: Sequence[Data], out_shape: Sequence[int],
                    op: str | None = None) -> Data:
        """Positions read the same positions of every operand (numpy broadcasting)."""
        out_shape = tuple(out_shape)
        same = [x for x in operands if x.shape == out_shape]
        if len(same) == len(operands):
            ref = operands[0]
            renames = [_rename(ref, x) for x in operands]
            if all(r is not None for r in renames):
                nshape = self.shape(ref.node)
                inputs = []
                for x, ren in zip(operands, renames):
                    assert ren is not None
                    inv = {b: a for a, b in ren.items()}
                    ph = iter(a for a in self.phantoms(x) if self.shape(x.node)[a] == 1)
                    maps = []
                    for a in range(len(nshape)):
                        src = inv.get(a)
                        if src is None and a in self.phantoms(ref):
                            src = next(ph, None)
                        maps.append(None if src is None else AxisMap.identity(src))
                    inputs.append((x.node, Edge(tuple(maps))))
                name = self.add(site, inputs, nshape, self.origin[ref.node], op=op)
                return Data(name, ref.dims)
        xs = [self.simple(x, site) for x in operands]
        reads = []
        for x in xs:
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
        return self.emit(site, xs, out_shape, reads, kind="broadcast", op=op)


def _reads_any(x: Data, b: Builder) -> bool:
    return len(b.shape(x.node)) > 0


def _axis_map(a: int, how: Read | None, kind: str) -> AxisMap:
    if how is None:
        return AxisMap.identity(a)
    if isinstance(how, Window):
        return AxisMap(a, how)
    return AxisMap(a, None, np.asarray(how, dtype=np.int64), kind)


def _rename(ref: Data, x: Data) -> dict[int, int] | None:
    """Axis correspondence x-axis -> ref-axis if x has ref's factor structure, else None."""
    if len(ref.dims) != len(x.dims):
        return None
    ren: dict[int, int] = {}
    for dr, dx in zip(ref.dims, x.dims):
        if len(dr) != len(dx):
            return None
        for (ar, sr, tr), (ax, sx, tx) in zip(dr, dx):
            if sr != sx or (ar is None) != (ax is None):
                return None
            if ar is None:
                continue
            assert ax is not None
            if tr != tx or ren.setdefault(ax, ar) != ar:
                return None
    if len(set(ren.values())) != len(ren):
        return None
    return ren
