"""The paper's graph algorithm: r, S, P of every node, with alignment checked at every merge.

Values are kept per *input* axis (the graph input's spatial axes): node axis j carries the
identity of the input axis it descends from. :func:`propagate` walks the DAG once in topological
order, O(V + E): for every node it gives r, S, P of that node as an end-point, keeps the
largest-r path at each merge and checks that the paths agree on the stride and on the centre
offset ``(r - 1)/2 - P`` (paper eq. 12, 13). :func:`paper_reverse` is the paper's own
formulation (reverse topological order from one output, eq. 1, 9, 10); the two agree on r0,
S0, P0 whenever the graph is aligned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import AlignmentError
from .graph import Graph, Node


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Receptive field of one node along one input axis: size r, stride S, padding P.

    All three are ``None`` where undefined; ``note`` says why: ``"global"`` (the node reads the
    whole input along this axis) or the kind of op that is not a sliding window.
    """

    size: int | None
    stride: int | None
    padding: int | None
    note: str = ""

    @property
    def defined(self) -> bool:
        return self.size is not None

    @property
    def offset2(self) -> int:
        """Twice the centre offset ``(r-1)/2 - P`` (an integer), compared by eq. 13."""
        assert self.size is not None and self.padding is not None
        return self.size - 1 - 2 * self.padding


GLOBAL = AxisRF(None, None, None, "global")


@dataclass(frozen=True)
class Misalignment:
    """Two paths into ``node`` disagree on ``axis`` (paper eq. 12 or 13)."""

    node: str
    axis: int
    paths: tuple[tuple[str, ...], tuple[str, ...]]
    strides: tuple[int, int]
    offsets: tuple[float, float]  # centre offsets (r-1)/2 - P of each path

    def __str__(self) -> str:
        what = "stride" if self.strides[0] != self.strides[1] else "centre offset"
        a, b = (" -> ".join(p) for p in self.paths)
        return (f"misaligned at {self.node!r}, axis {self.axis}: {what} differs "
                f"(S {self.strides[0]} vs {self.strides[1]}, centre offset (r-1)/2-P "
                f"{self.offsets[0]:g} vs {self.offsets[1]:g}) between path [{a}] and [{b}]")


@dataclass
class Propagation:
    """Per-node r, S, P (one AxisRF per input axis), node-axis identities, misalignments."""

    rf: dict[str, tuple[AxisRF, ...]]
    axis_of: dict[str, tuple[int | None, ...]]  # input axis a -> the node's axis j (or None)
    misalignments: list[Misalignment]
    shift_invariant: dict[str, tuple[bool, ...]]  # per input axis: aligned windows all the way
    via: dict[str, tuple[int | None, ...]]  # edge index of the largest-r path, per input axis


def _extend(parent: AxisRF, node: Node, edge_index: int, parent_axis: int | None,
            parent_ndim: int) -> AxisRF | None:
    """r, S, P of a node along one input axis via one edge; None if the edge does not read it."""
    if not parent.defined:
        return parent
    edge = node.edges[edge_index]
    if parent_axis is None:
        return None
    for m in edge.axes:
        if m is not None and m.src == parent_axis:
            if m.window is None:
                return AxisRF(None, None, None, m.kind)
            w = m.window
            assert parent.size is not None and parent.stride is not None
            assert parent.padding is not None
            return AxisRF(parent.size + (w.span - 1) * parent.stride, parent.stride * w.stride,
                          parent.padding + w.pad[0] * parent.stride)
    return GLOBAL  # the edge reduces this axis: every position sees all of it


def propagate(graph: Graph) -> Propagation:
    """Forward pass over the DAG: r, S, P of every node as an end-point (see module doc)."""
    ndim = len(graph.input_shape)
    inp = graph.input
    rf = {inp: tuple(AxisRF(1, 1, 0) for _ in range(ndim))}
    axis_of: dict[str, tuple[int | None, ...]] = {inp: tuple(range(ndim))}
    inv = {inp: (True,) * ndim}
    via: dict[str, tuple[int | None, ...]] = {inp: (None,) * ndim}
    bad: list[Misalignment] = []
    for node in graph:
        if node.name == inp:
            continue
        node_rf, node_axes, node_inv, node_via = [], [], [], []
        for a in range(ndim):
            cands: list[tuple[int, AxisRF]] = []
            axes_here: set[int | None] = set()
            parents_inv = True
            for e, pname in enumerate(node.inputs):
                parent_axis = axis_of[pname][a]
                c = _extend(rf[pname][a], node, e, parent_axis, len(graph[pname].shape))
                if c is None:
                    continue
                cands.append((e, c))
                parents_inv &= inv[pname][a]
                axes_here.update(j for j, m in enumerate(node.edges[e].axes)
                                 if m is not None and m.src == parent_axis)
            result, chosen, aligned = _merge(node, a, cands, graph, via)
            if len(axes_here) > 1:  # inputs disagree on which node axis this input axis is
                result, axes_here = AxisRF(None, None, None, "axes permuted"), set()
            elif result.note == "global":
                axes_here = set()
            node_rf.append(result)
            node_axes.append(next(iter(axes_here)) if len(axes_here) == 1 else None)
            node_via.append(chosen)
            node_inv.append(result.defined and parents_inv and aligned is None)
            if aligned is not None:
                bad.append(aligned)
        rf[node.name] = tuple(node_rf)
        axis_of[node.name] = tuple(node_axes)
        inv[node.name] = tuple(node_inv)
        via[node.name] = tuple(node_via)
    return Propagation(rf, axis_of, bad, inv, via)


def _merge(node: Node, a: int, cands: list[tuple[int, AxisRF]], graph: Graph,
           via: dict[str, tuple[int | None, ...]]
           ) -> tuple[AxisRF, int | None, Misalignment | None]:
    """Combine the candidates of all edges on one axis; keep the largest r; check alignment."""
    if not cands:
        return AxisRF(None, None, None, "independent of the input"), None, None
    if any(c.note == "global" for _, c in cands):
        return GLOBAL, None, None
    undefined = [c for _, c in cands if not c.defined]
    if undefined:
        return undefined[0], None, None
    best_e, best = max(cands, key=lambda ec: ec[1].size or 0)
    for e, c in cands:
        if c.stride != best.stride or c.offset2 != best.offset2:
            assert best.stride is not None and c.stride is not None
            paths = (_path(graph, via, node, best_e, a), _path(graph, via, node, e, a))
            return best, best_e, Misalignment(
                node.name, a, paths, (best.stride, c.stride), (best.offset2 / 2, c.offset2 / 2))
    return best, best_e, None


def _path(graph: Graph, via: Mapping[str, tuple[int | None, ...]], node: Node, edge: int,
          a: int) -> tuple[str, ...]:
    """Node names of the largest-r path from the input through ``edge`` into ``node``."""
    names = [node.name]
    current: str | None = node.inputs[edge]
    while current is not None:
        names.append(current)
        e = via[current][a]
        current = graph[current].inputs[e] if e is not None else None
    return tuple(reversed(names))


def paper_reverse(graph: Graph, output: str, strict: bool = False) -> dict[str, tuple[AxisRF, ...]]:
    """The paper's algorithm: r_l, S_l, P_l of ``output`` w.r.t. every node l it depends on.

    Reverse topological order from ``output`` (r_L = 1, S_L = 1, P_L = 0), recurrences eq. 1, 9,
    10 along each edge, the largest r kept where several paths meet, alignment (eq. 12, 13)
    checked there; ``strict`` raises :class:`AlignmentError` on the first disagreement.
    Only sliding-window edges are supported; others give undefined values.
    """
    ndim = len(graph.input_shape)
    live = graph.ancestors([output])
    order = [n for n in graph.nodes if n in live]
    out_axes = list(range(len(graph[output].shape)))
    found: dict[str, list[AxisRF | None]] = {output: [AxisRF(1, 1, 0) for _ in out_axes]}
    for name in reversed(order):
        node = graph[name]
        mine = found.get(name)
        if mine is None:
            continue
        for e, pname in enumerate(node.inputs):
            parent = graph[pname]
            new: list[AxisRF | None] = [None] * len(parent.shape)
            for j, m in enumerate(node.edges[e].axes):
                cur = mine[j]
                if m is None or cur is None:
                    continue
                if m.window is None or not cur.defined:
                    new[m.src] = AxisRF(None, None, None, m.kind if m.window is None else cur.note)
                    continue
                w = m.window
                assert cur.size is not None and cur.stride is not None
                assert cur.padding is not None
                new[m.src] = AxisRF(w.stride * cur.size + (w.span - w.stride),
                                    w.stride * cur.stride, w.stride * cur.padding + w.pad[0])
            for j in node.edges[e].reduced(len(parent.shape)):
                new[j] = GLOBAL
            old = found.get(pname)
            if old is None:
                found[pname] = new
                continue
            for j, (o, n) in enumerate(zip(old, new)):
                if o is None or n is None or not (o.defined and n.defined):
                    old[j] = o if n is None else n if o is None else (o if not o.defined else n)
                    continue
                if (o.stride != n.stride or o.offset2 != n.offset2) and strict:
                    raise AlignmentError(
                        f"paths from {pname!r} to {output!r} disagree on axis {j}: S {o.stride}"
                        f" vs {n.stride}, centre offset {o.offset2 / 2:g} vs {n.offset2 / 2:g}")
                assert o.size is not None and n.size is not None
                if n.size > o.size:
                    old[j] = n
    del ndim
    return {k: tuple(v if v is not None else AxisRF(None, None, None, "not read") for v in vals)
            for k, vals in found.items()}
