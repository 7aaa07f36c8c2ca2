"""The result object: r, S, P per node, alignment, exact regions on demand; prints itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import AlignmentError, SpecError
from .geometry import center, region
from .graph import Graph, paused_gc
from .propagate import AxisRF, Misalignment, Propagation, propagate
from .regions import Boxes, exact_regions

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class NodeRF:
    """One row of the table: a node and its receptive field per input axis."""

    name: str
    op: str
    path: str
    shape: tuple[int, ...]
    rf: tuple[AxisRF, ...]
    shift_invariant: bool

    @property
    def size(self) -> tuple[int | None, ...]:
        return tuple(a.size for a in self.rf)

    @property
    def stride(self) -> tuple[int | None, ...]:
        return tuple(a.stride for a in self.rf)

    @property
    def padding(self) -> tuple[int | None, ...]:
        return tuple(a.padding for a in self.rf)

    @property
    def is_global(self) -> bool:
        return any(a.note == "global" for a in self.rf)

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "path": self.path, "shape": list(self.shape),
                "size": list(self.size), "stride": list(self.stride),
                "padding": list(self.padding), "notes": [a.note for a in self.rf],
                "shift_invariant": self.shift_invariant}


@dataclass(eq=False)
class Analysis:
    """Receptive fields of a graph: per node (every node is an end-point) and for ``output``."""

    graph: Graph
    output: str
    propagation: Propagation
    _boxes: dict[str, Boxes] = field(default_factory=dict, repr=False)

    # ---- the output node -------------------------------------------------------------------
    @property
    def size(self) -> tuple[int | None, ...]:
        return self.node().size

    @property
    def stride(self) -> tuple[int | None, ...]:
        return self.node().stride

    @property
    def padding(self) -> tuple[int | None, ...]:
        return self.node().padding

    @cached_property
    def misalignments(self) -> list[Misalignment]:
        """Disagreeing paths at merges the output depends on."""
        live = self.graph.ancestors([self.output])
        return [m for m in self.propagation.misalignments if m.node in live]

    @property
    def aligned(self) -> bool:
        return not self.misalignments

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.input_shape

    def node(self, name: str | None = None) -> NodeRF:
        """The row of one node (by node name or user path); the output by default."""
        name = self.output if name is None else self.graph.resolve(name)
        n = self.graph[name]
        p = self.propagation
        return NodeRF(n.name, n.op, n.path, n.shape, p.rf[name], all(p.shift_invariant[name]))

    @property
    def nodes(self) -> list[NodeRF]:
        return [self.node(n) for n in self.graph.nodes]

    # ---- exact regions -------------------------------------------------------------------
    def regions(self, name: str | None = None) -> Boxes:
        """Exact clipped regions of every position of a node (the output by default)."""
        name = self.output if name is None else self.graph.resolve(name)
        if name not in self._boxes:
            self._boxes.update(exact_regions(self.graph, [name]))
        return self._boxes[name]

    def region_of(self, index, name: str | None = None) -> dict:
        """Region of one position: exact clipped box, the paper's unclipped region and centre.

        ``index`` is the position in the node's own axes. The unclipped region and centre
        (eq. 7, 8, 11) are given per input axis where the node is shift-invariant (aligned
        sliding windows all the way), else None: the exact box is then the only truth.
        """
        row = self.node(name)
        idx = tuple(int(i) for i in np.atleast_1d(index))
        if len(idx) != len(row.shape) or any(not 0 <= i < n for i, n in zip(idx, row.shape)):
            raise SpecError(f"position {list(idx)} is outside node {row.name!r} of shape "
                            f"{list(row.shape)}")
        axes = self.propagation.axis_of[row.name]
        invariant = self.propagation.shift_invariant[row.name]
        unclipped, centres = [], []
        for a, rf in enumerate(row.rf):
            j = axes[a]
            if rf.defined and j is not None and invariant[a]:
                assert rf.size is not None and rf.stride is not None and rf.padding is not None
                u, v = region(idx[j], rf.size, rf.stride, rf.padding)
                unclipped.append((int(u), int(v)))
                centres.append(float(center(idx[j], rf.size, rf.stride, rf.padding)))
            else:
                unclipped.append(None)
                centres.append(None)
        return {"index": list(idx), "region": self.regions(row.name).at(idx),
                "unclipped": unclipped, "center": centres}

    def axis_regions(self, name: str | None = None) -> list[list[list[int] | None]] | None:
        """Per input axis, the clipped [lo, hi] of every position along the node axis that
        carries it (None where a position reads nothing); None if the regions are not separable
        (a box then depends on more than one node axis: see :meth:`regions`)."""
        row = self.node(name)
        boxes = self.regions(row.name)
        axes = self.propagation.axis_of[row.name]
        result = []
        for a in range(len(self.input_shape)):
            j = axes[a]
            lo, hi = boxes.lo[a], boxes.hi[a]
            if j is None:
                if lo.size and (np.ptp(lo) or np.ptp(hi)):
                    return None
                line_lo, line_hi = lo.reshape(-1)[:1], hi.reshape(-1)[:1]
            else:
                first = tuple(0 if k != j else slice(None) for k in range(lo.ndim))
                line_lo, line_hi = lo[first], hi[first]
                shape = [1] * lo.ndim
                shape[j] = -1
                if not (np.array_equal(np.broadcast_to(line_lo.reshape(shape), lo.shape), lo)
                        and np.array_equal(np.broadcast_to(line_hi.reshape(shape), hi.shape),
                                           hi)):
                    return None
            result.append([[int(u), int(v)] if u <= v else None
                           for u, v in zip(line_lo, line_hi)])
        return result

    # ---- output ----------------------------------------------------------------------------
    def to_dict(self, regions: bool = False) -> dict:
        """JSON-ready dict (see the README for the schema)."""
        out = self.node()
        d = {"schema_version": SCHEMA_VERSION, "input_shape": list(self.input_shape),
             "output": out.name, "output_path": out.path, "size": list(out.size),
             "stride": list(out.stride), "padding": list(out.padding),
             "aligned": self.aligned, "shift_invariant": out.shift_invariant,
             "misalignments": [_misalignment_dict(m) for m in self.misalignments],
             "nodes": [n.to_dict() for n in self.nodes]}
        if regions:
            d["regions"] = self.axis_regions()
            if d["regions"] is None:
                b = self.regions()
                d["region_boxes"] = {"lo": b.lo.tolist(), "hi": b.hi.tolist()}
        return d

    def table(self, nodes: list[str] | None = None) -> str:
        """The per-node table the CLI prints."""
        rows = [self.node(n) for n in nodes] if nodes else self.nodes
        header = ("node", "op", "shape", "r", "S", "P", "aligned")
        body = []
        live = self.graph.ancestors([self.output])
        bad = {m.node for m in self.propagation.misalignments}
        for r in rows:
            body.append((r.path if r.path and r.path != r.name else r.name, r.op,
                         "x".join(map(str, r.shape)) or "-", _fmt(r.size, r), _fmt(r.stride, r),
                         _fmt(r.padding, r),
                         "no" if r.name in bad else ("yes" if r.name in live else "")))
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
                 for row in (header, *body)]
        out = self.node()
        summary = (f"output {out.path or out.name}: r={_fmt(out.size, out)} "
                   f"S={_fmt(out.stride, out)} P={_fmt(out.padding, out)} "
                   f"at input {'x'.join(map(str, self.input_shape))}; "
                   + ("aligned" if self.aligned else f"NOT aligned ({len(self.misalignments)} "
                      "merges disagree)"))
        lines += ["", summary] + [f"  {m}" for m in self.misalignments]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _fmt(values: tuple[int | None, ...], row: NodeRF) -> str:
    if any(v is None for v in values):
        notes = {a.note for a in row.rf if a.size is None}
        if notes == {"global"}:
            return "global"
    parts = ["-" if v is None else str(v) for v in values]
    return parts[0] if len(set(parts)) == 1 else ",".join(parts)


def _misalignment_dict(m: Misalignment) -> dict:
    return {"node": m.node, "axis": m.axis, "paths": [list(p) for p in m.paths],
            "strides": list(m.strides), "center_offsets": list(m.offsets), "message": str(m)}


def analyze_graph(graph: Graph, output: str | None = None, strict: bool = False) -> Analysis:
    """Run the graph algorithm; ``strict`` raises :class:`AlignmentError` on misalignment."""
    if len(graph) < 2:
        raise SpecError("the graph has no node besides its input")
    name = (graph.output or list(graph.nodes)[-1]) if output is None else graph.resolve(output)
    node = graph[name]
    if any(n < 1 for n in node.shape):
        where = ", ".join(x for x in (f"module {node.path}" if node.path and node.path != name
                                      else "", node.source) if x)
        raise SpecError(f"end-point {name!r} (op {node.op}{', ' + where if where else ''}) has "
                        f"an empty spatial shape {list(node.shape)} at input "
                        f"{'x'.join(map(str, graph.input_shape))}: it has no positions, so no "
                        "receptive field. The input is too small for this model, or an op crops "
                        "everything away; analyze at a larger input size, or choose an earlier "
                        "end-point with output=.")
    with paused_gc():
        result = Analysis(graph, name, propagate(graph))
    if strict and not result.aligned:
        raise AlignmentError("; ".join(str(m) for m in result.misalignments)
                             + ". Pass strict=False to get the result with its diagnosis.")
    return result
