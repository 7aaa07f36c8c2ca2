"""How the JAX frontend makes IR nodes from jaxpr values (see ``jax_values``).

Rules create nodes with :meth:`Builder.emit`: each output dimension reads a dimension of each
operand by the identity, a :class:`Window` or explicit reads. Operands in *simple* form (every
dimension one whole spatial axis or non-spatial) map directly; factored dimensions read by the
identity keep their factors; otherwise :meth:`Builder.simple` first turns a factored view into a
new node with explicit reads (an axis is placed on the dimension holding its major digits; its
other digits become offsets; a second axis merged into the same dimension is reduced, i.e.
global, which is a sound over-approximation, e.g. ``concatenate`` of a class token to
flattened (h*w) tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import prod

import numpy as np

from ..geometry import Window
from ..graph import AxisMap, Edge, Graph, Node
from .jax_maps import Read, as_read
from .jax_values import Data, Dim, Factor, plain_dim


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
                explicit = np.asarray(explicit).reshape(1, -1)
                # index 0 of a size-1 axis is the identity: r, S, P stay defined
                maps[j][i] = AxisMap.identity(a) if (self.shape(xs[i].node)[a] == 1 and
                                                     explicit.tolist() == [[0]]) else \
                    AxisMap(a, None, explicit, kind)
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
