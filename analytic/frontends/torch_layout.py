"""Which torch dims are spatial, and how an op's per-dim reads become IR edges.

The IR (``analytic.graph``) knows only spatial axes; torch tensors have batch, channel and
spatial dims in any order, and views merge or split them. A :class:`Layout` says, for every
dim of a torch tensor, which axes of its IR node it carries:

- a *plain* dim carries none (batch, channels, a new dim, a dim of a constant);
- a *simple* dim carries exactly one whole IR axis (``Factor(axis, 1, n)``);
- a *composite* dim carries parts of IR axes and plain parts, outermost first, as after
  ``x.flatten(2)`` (tokens = h * W + w) or a view that splits an axis. Pointwise ops and views
  keep composites; any op that reads along a composite dim in another way makes the axes in it
  global (reduced), which is always a sound over-approximation.

IR axes of a node that no dim carries are *hidden* (size 1, e.g. after ``x[:, :, 3]``); they
are carried through ops and meet the same input axis again by broadcasting. A size-1 axis that
still has its own torch dim (a 1-pixel map) is not hidden: it stays on that dim, through views
too, so windows along it apply.

Rules (``torch_rules``) describe an op per torch dim: for each output dim, which dim of each
input it reads and how (an :class:`~analytic.graph.AxisMap` whose ``src`` is a *torch dim*).
:func:`translate` turns that into the IR node's axes and edges: it unifies the IR axes that land
in the same output position (union-find over (input, axis)), keeps simple dims as sliding
windows or explicit reads, composite dims as identities, and reduces the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CaptureError
from ..geometry import Window
from ..graph import AxisMap, Edge

IDENTITY_WINDOW = Window()


@dataclass(frozen=True, slots=True)
class Factor:
    """Part of a torch dim: ``size`` values of IR axis ``axis`` spaced ``stride`` apart (axis
    index = sum of digit * stride over the axis's factors), or a plain part (``axis`` None)."""

    axis: int | None
    stride: int
    size: int


Dim = tuple[Factor, ...]


def plain(n: int) -> Dim:
    return (Factor(None, 1, n),) if n != 1 else ()


def normalize(dim: Sequence[Factor]) -> Dim:
    """Drop size-1 factors, merge neighbours that continue each other.

    A size-1 IR axis that is all a dim carries stays on it (``(Factor(a, 1, 1),)``): a 1-pixel
    map is still spatial, and an op that reads that dim with a window (padding, a kernel that
    reads only padding) must apply the window to the axis. Only a size-1 axis inside a larger
    dim is dropped (hidden, see the module doc)."""
    dim = tuple(dim)
    units = [f for f in dim if f.size == 1 and f.axis is not None]
    if len(units) == 1 and all(f.size == 1 for f in dim):
        return (Factor(units[0].axis, 1, 1),)
    out: list[Factor] = []
    for f in dim:
        if f.size == 1:
            continue
        if out:
            g = out[-1]
            if g.axis is None and f.axis is None:
                out[-1] = Factor(None, 1, g.size * f.size)
                continue
            if g.axis is not None and g.axis == f.axis and g.stride == f.stride * f.size:
                out[-1] = Factor(g.axis, f.stride, g.size * f.size)
                continue
        out.append(f)
    return tuple(out)


@dataclass(frozen=True)
class Layout:
    """A torch tensor's IR node and what each of its dims carries."""

    node: str
    dims: tuple[Dim, ...]
    node_shape: tuple[int, ...]

    def simple_axis(self, d: int) -> int | None:
        """The IR axis dim ``d`` carries whole, or None (plain or composite)."""
        dim = self.dims[d]
        if len(dim) == 1 and dim[0].axis is not None and dim[0].stride == 1 \
                and dim[0].size == self.node_shape[dim[0].axis]:
            return dim[0].axis
        return None

    def axes_in(self, d: int) -> set[int]:
        return {f.axis for f in self.dims[d] if f.axis is not None}

    def is_spatial(self, d: int) -> bool:
        return bool(self.axes_in(d))

    @property
    def hidden(self) -> list[int]:
        carried = {f.axis for dim in self.dims for f in dim if f.axis is not None}
        return [a for a in range(len(self.node_shape)) if a not in carried]


def input_layout(node: str, ndim: int, spatial_dims: Sequence[int],
                 shape: Sequence[int]) -> Layout:
    """Layout of the graph input: ``spatial_dims`` carry IR axes 0, 1, ... in order."""
    dims: list[Dim] = []
    for d in range(ndim):
        if d in spatial_dims:
            a = list(spatial_dims).index(d)
            dims.append((Factor(a, 1, int(shape[d])),))
        else:
            dims.append(plain(int(shape[d])))
    node_shape = tuple(int(shape[d]) for d in spatial_dims)
    return Layout(node, tuple(dims), node_shape)


# ---- ops: per-dim maps -> IR edges --------------------------------------------------------------


def is_identity(m: Any) -> bool:
    return isinstance(m, AxisMap) and m.explicit is None and m.window == IDENTITY_WINDOW


def _axis_map(m: Any, a: int, n_in: int, n_out: int) -> AxisMap:
    """A rule's map (src = torch dim) as an IR AxisMap on IR axis ``a``."""
    if isinstance(m, AxisMap):
        return AxisMap(a, m.window, m.explicit, m.kind)
    whole = AxisMap.whole(a, n_in, n_out)  # a Whole marker
    return AxisMap(a, None, whole.explicit, getattr(m, "kind", "global"))


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(self, x: tuple[int, int]) -> tuple[int, int]:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass
class Translated:
    """An op's IR node (shape, one edge per input) and the output tensor's dims."""

    shape: tuple[int, ...]
    edges: list[Edge]
    dims: tuple[Dim, ...]
    origins: tuple[int | None, ...]


def translate(layouts: Sequence[Layout], origins: Sequence[Sequence[int | None]],
              maps: Sequence[Sequence[Any] | None], out_shape: Sequence[int],
              where: str) -> Translated:
    """IR axes and edges of an op from per-torch-dim maps (see the module doc).

    ``maps[k]`` has one entry per output dim (plus optional extra entries: hidden size-1 output
    axes, e.g. the index ``select`` keeps), each an AxisMap whose ``src`` is a dim of input k,
    or None; ``maps[k]`` None: the output does not depend on input k.
    """
    out_shape = [int(s) for s in out_shape]
    nout = len(out_shape)
    uf = _UnionFind()
    reduced: list[set[int]] = [set() for _ in layouts]
    # per output dim: ("plain",) | ("simple", [(k, axis, map)]) | ("comp", [(k, dim)])
    kinds: list[tuple] = []
    extra: list[list[tuple[int, int, AxisMap]]] = []
    for o in range(max((len(m) for m in maps if m is not None), default=nout)):
        n_out = out_shape[o] if o < nout else 1
        simple, comp = [], []
        for k, (lay, mk) in enumerate(zip(layouts, maps)):
            if mk is None or o >= len(mk) or mk[o] is None:
                continue
            m = mk[o]
            assert m is not None
            if not lay.is_spatial(m.src):
                continue
            a = lay.simple_axis(m.src)
            if a is not None:
                simple.append((k, a, m))
            elif is_identity(m) and _dim_size(lay, m.src) == n_out and o < nout:
                comp.append((k, lay.dims[m.src]))
            else:  # reads along a composite dim otherwise: global along its axes
                reduced[k] |= lay.axes_in(m.src)
        if o >= nout:
            extra.append(simple)
            continue
        if simple and comp:
            for k, dim in comp:
                reduced[k] |= {f.axis for f in dim if f.axis is not None}
            comp = []
        if comp and len({_signature(d) for _, d in comp}) > 1:
            for k, dim in comp:
                reduced[k] |= {f.axis for f in dim if f.axis is not None}
            comp = []
        if simple:
            for k, a, _ in simple[1:]:
                uf.union((simple[0][0], simple[0][1]), (k, a))
            uf.find((simple[0][0], simple[0][1]))
            kinds.append(("simple", simple))
        elif comp:
            k0, d0 = comp[0]
            for k, dim in comp:
                for f0, f in zip(d0, dim):
                    if f.axis is not None:
                        uf.union((k0, f0.axis), (k, f.axis))  # type: ignore[arg-type]
            kinds.append(("comp", comp))
        else:
            kinds.append(("plain",))

    # which input axes are read at all; the rest are reduced (global)
    used: list[set[int]] = [set() for _ in layouts]
    for kind in kinds:
        if kind[0] == "simple":
            for k, a, _ in kind[1]:
                used[k].add(a)
        elif kind[0] == "comp":
            for k, dim in kind[1]:
                used[k] |= {f.axis for f in dim if f.axis is not None}
    for simple in extra:
        for k, a, _ in simple:
            used[k].add(a)
    hidden: list[list[int]] = []
    for k, lay in enumerate(layouts):
        hk = [a for a in lay.hidden if maps[k] is not None]
        hidden.append(hk)
        used[k] |= set(hk)
        used[k] -= reduced[k]

    # classes of unified (input, axis) pairs -> output IR axes
    classes: dict[tuple[int, int], dict] = {}

    def cls(k: int, a: int) -> dict:
        root = uf.find((k, a))
        c = classes.get(root)
        if c is None:
            c = classes[root] = {"members": {}, "size": None, "dims": set(), "hidden": True,
                                 "origin": origins[k][a], "order": len(classes)}
        return c

    for o, kind in enumerate(kinds):
        if kind[0] == "simple":
            for k, a, m in kind[1]:
                if a in used[k]:
                    c = cls(k, a)
                    _member(c, k, a, _axis_map(m, a, layouts[k].node_shape[a], out_shape[o]),
                            where)
                    c.update(size=out_shape[o], hidden=False)
                    c["dims"].add(("simple", o))
        elif kind[0] == "comp":
            for k, dim in kind[1]:
                for f in dim:
                    if f.axis is not None and f.axis in used[k]:
                        c = cls(k, f.axis)
                        _member(c, k, f.axis, AxisMap.identity(f.axis), where)
                        c.update(size=layouts[k].node_shape[f.axis], hidden=False)
                        c["dims"].add(("comp", o))
    for simple in extra:  # hidden size-1 output axes (select)
        for k, a, m in simple:
            if a in used[k]:
                c = cls(k, a)
                _member(c, k, a, _axis_map(m, a, layouts[k].node_shape[a], 1), where)
                c["size"] = 1
    for k, hk in enumerate(hidden):
        for a in hk:
            if a in used[k]:
                c = cls(k, a)
                if k not in c["members"]:
                    _member(c, k, a, AxisMap.identity(a), where)
                    c["size"] = c["size"] or 1

    for c in classes.values():
        if sum(kind == "simple" for kind, _ in c["dims"]) > 1 or (
                c["dims"] and len({kind for kind, _ in c["dims"]}) > 1):
            raise CaptureError(f"{where}: one IR axis lands in two output dims "
                               f"{sorted(o for _, o in c['dims'])}; cannot express this op")

    # hidden size-1 classes meet a visible axis of the same origin by broadcasting
    visible = [c for c in classes.values() if not c["hidden"]]
    final = []
    for c in sorted(classes.values(), key=lambda c: c["order"]):
        if c["hidden"]:
            target = next((v for v in visible if v["origin"] == c["origin"]
                           and not (set(v["members"]) & set(c["members"]))), None)
            if target is not None and c["origin"] is not None:
                for k, (a, m) in c["members"].items():
                    row = m.reads(layouts[k].node_shape[a], 1)[:1]
                    bc = np.repeat(row, target["size"], axis=0)
                    target["members"][k] = (a, AxisMap(a, None, bc, "broadcast"))
                continue
        final.append(c)
    final.sort(key=lambda c: (c["origin"] is None, c["origin"] or 0, c["order"]))

    index = {id(c): i for i, c in enumerate(final)}
    shape = tuple(int(c["size"]) for c in final)
    edges = []
    for k in range(len(layouts)):
        edges.append(Edge(tuple(c["members"][k][1] if k in c["members"] else None
                                for c in final)))
    out_axis: dict[tuple[int, int], int] = {}
    for c in final:
        for k, (a, _) in c["members"].items():
            out_axis[(k, a)] = index[id(c)]

    dims: list[Dim] = []
    for o, kind in enumerate(kinds):
        if kind[0] == "simple":
            k, a, _ = kind[1][0]
            j = next((out_axis[(k2, a2)] for k2, a2, _ in kind[1] if (k2, a2) in out_axis),
                     None)
            dims.append((Factor(j, 1, out_shape[o]),) if j is not None else plain(out_shape[o]))
        elif kind[0] == "comp":
            k, dim = kind[1][0]
            dims.append(normalize(
                Factor(out_axis[(k, f.axis)], f.stride, f.size)
                if f.axis is not None and (k, f.axis) in out_axis else Factor(None, 1, f.size)
                for f in dim))
        else:
            dims.append(plain(out_shape[o]))
    return Translated(shape, edges, tuple(dims), tuple(c["origin"] for c in final))


def _member(c: dict, k: int, a: int, m: AxisMap, where: str) -> None:
    old = c["members"].get(k)
    if old is not None and old[0] != a:
        raise CaptureError(f"{where}: two axes of input {k} land in one output axis; cannot "
                           "express this op")
    c["members"][k] = (a, m)


def _dim_size(lay: Layout, d: int) -> int:
    return int(np.prod([f.size for f in lay.dims[d]])) if lay.dims[d] else 1


def _signature(dim: Dim) -> tuple:
    return tuple((f.axis is None, f.stride, f.size) for f in dim)
