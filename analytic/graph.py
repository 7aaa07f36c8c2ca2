"""The IR: a DAG of nodes with concrete spatial shapes and per-axis index maps on each edge.

Only spatial axes exist here; frontends drop batch and channel dimensions at the boundary.
An edge says, for every spatial axis of the consuming node, which spatial axis of the producer
it reads and which indices (:class:`AxisMap`). Producer axes that no output axis reads are
reduced: every output position depends on all of them (global pooling, flatten + linear).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .errors import GraphError, SpecError
from .geometry import Window


@dataclass(frozen=True, eq=False)
class AxisMap:
    """How one output axis of a node reads one spatial axis (``src``) of an input.

    ``window`` is the paper's view (kernel, stride, dilation, pad) used for r, S, P; ``None``
    when the op is not an integer-stride sliding window (r, S, P undefined; ``kind`` says why).
    ``explicit`` lists the input indices each output position reads, shape (n_out, m), -1 for
    none; it overrides the window's reads (reflect padding, upsampling, transposed conv).
    """

    src: int
    window: Window | None = None
    explicit: np.ndarray | None = None
    kind: str = "window"

    def __post_init__(self) -> None:
        if self.window is None and self.explicit is None:
            raise SpecError(f"axis map on axis {self.src} needs a window or explicit reads")
        if self.explicit is not None:
            arr = np.asarray(self.explicit, dtype=np.int64)
            if arr.ndim != 2:
                raise SpecError(f"explicit reads must be 2-D (n_out, m), got shape {arr.shape}")
            object.__setattr__(self, "explicit", arr)

    def reads(self, n_in: int, n_out: int) -> np.ndarray:
        """Input indices read by each output position, shape (n_out, m), -1 = nothing."""
        if self.explicit is not None:
            return self.explicit
        assert self.window is not None
        return self.window.reads(n_in, n_out)

    @classmethod
    def whole(cls, src: int, n_in: int, n_out: int) -> AxisMap:
        """Every output position reads the whole input axis (global along this axis)."""
        return cls(src, None, np.broadcast_to(np.arange(n_in), (n_out, n_in)), "global")

    @classmethod
    def identity(cls, src: int) -> AxisMap:
        return cls(src, Window())


@dataclass(frozen=True, eq=False)
class Edge:
    """One input of a node: an :class:`AxisMap` per output axis, ``None`` for a broadcast axis."""

    axes: tuple[AxisMap | None, ...]

    @classmethod
    def pointwise(cls, ndim: int) -> Edge:
        return cls(tuple(AxisMap.identity(a) for a in range(ndim)))

    @classmethod
    def windows(cls, windows: Sequence[Window], kind: str = "window") -> Edge:
        return cls(tuple(AxisMap(a, w, None, kind) for a, w in enumerate(windows)))

    def reduced(self, parent_ndim: int) -> list[int]:
        """Producer axes read by no output axis: reduced (global) along them."""
        used = {m.src for m in self.axes if m is not None}
        return [a for a in range(parent_ndim) if a not in used]


@dataclass(frozen=True, eq=False)
class Node:
    """One tensor of the computation: its op, inputs, spatial shape and where it came from."""

    name: str
    op: str
    inputs: tuple[str, ...]
    edges: tuple[Edge, ...]
    shape: tuple[int, ...]
    path: str = ""  # the user's name for it: module path, spec name, Flax scope
    source: str = ""  # user source location, when known


@dataclass
class Graph:
    """A DAG in topological order, one input node; nodes are added producers first."""

    nodes: dict[str, Node] = field(default_factory=dict)
    input: str = ""
    output: str = ""  # default end-point; the last node when empty

    @classmethod
    def with_input(cls, shape: Sequence[int], name: str = "input") -> Graph:
        g = cls()
        shape = tuple(int(n) for n in shape)
        if any(n < 1 for n in shape):
            raise SpecError(f"input shape must be positive, got {list(shape)}")
        g.nodes[name] = Node(name, "input", (), (), shape, path=name)
        g.input = name
        return g

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.nodes[self.input].shape

    def add(self, node: Node) -> Node:
        """Append a node after checking it against its inputs (names, axes, index ranges)."""
        where = f"node {node.name!r} (op {node.op})"
        if node.name in self.nodes:
            raise GraphError(f"{where}: duplicate node name")
        if len(node.edges) != len(node.inputs):
            raise GraphError(f"{where}: {len(node.inputs)} inputs but {len(node.edges)} edges")
        if not node.inputs:
            raise GraphError(f"{where}: has no inputs; only the graph input may")
        if any(n < 0 for n in node.shape):
            raise GraphError(f"{where}: negative size in shape {list(node.shape)}")
        node = _fit_windows(node, self.nodes)
        for name, edge in zip(node.inputs, node.edges):
            parent = self.nodes.get(name)
            if parent is None:
                raise GraphError(f"{where}: input {name!r} is not defined before it")
            if len(edge.axes) != len(node.shape):
                raise GraphError(
                    f"{where}: edge from {name!r} maps {len(edge.axes)} axes, "
                    f"node has {len(node.shape)} spatial axes")
            srcs = [m.src for m in edge.axes if m is not None]
            if len(set(srcs)) != len(srcs) or any(not 0 <= s < len(parent.shape) for s in srcs):
                raise GraphError(f"{where}: edge from {name!r} has bad source axes {srcs} "
                                 f"for an input with {len(parent.shape)} spatial axes")
            for j, m in enumerate(edge.axes):
                if m is None or m.explicit is None:
                    continue
                if m.explicit.shape[0] != node.shape[j] or (
                        m.explicit.size and m.explicit.max() >= parent.shape[m.src]):
                    raise GraphError(f"{where}: explicit reads on axis {j} do not fit shapes "
                                     f"{list(parent.shape)} -> {list(node.shape)}")
        self.nodes[node.name] = node
        return node

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def resolve(self, name: str) -> str:
        """Node name from a node name or a user path (module path, '.' or '/' separated);
        clear error otherwise."""
        if name in self.nodes:
            return name
        path = name.replace("/", ".")  # TF-slim style scopes: conv1/conv1_1
        # a module's output is the last node inside it, its submodules included (a block
        # ending in `self.relu(out + identity)` ends with the node of path `block.relu`);
        # the last one the graph's output depends on, when there is one (a jaxpr keeps dead
        # equations: jnp.pad(mode="reflect") computes a slice it never uses)
        inside = [n.name for n in self.nodes.values()
                  if n.path == path or n.path.startswith(path + ".")]
        if inside:
            if self.output in self.nodes:
                live = self.ancestors([self.output])
                inside = [n for n in inside if n in live] or inside
            return inside[-1]
        close = sorted({n.path or n.name for n in self.nodes.values()
                        if name.lower() in (n.path or n.name).lower()})[:8]
        hint = f" Close: {', '.join(close)}." if close else ""
        raise SpecError(f"no node or module path {name!r} in the graph ({len(self)} nodes).{hint}"
                        " List them with `erf analyze ... ` (the per-node table).")

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """Every node some of ``names`` depends on, themselves included."""
        seen: set[str] = set()
        stack = list(names)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.nodes[n].inputs)
        return seen


def _fit_windows(node: Node, nodes: dict[str, Node]) -> Node:
    """Explicit reads that are exactly a sliding window's get that window, so r, S, P stay
    defined through them whichever frontend built the map (a linear resize 8 -> 7 reads
    {o, o+1}: kernel 2, stride 1; a gather of every other pixel: stride 2). Global maps stay
    global."""
    from .indexmaps import fit_window
    edges, changed = [], False
    for name, edge in zip(node.inputs, node.edges):
        parent = nodes.get(name)
        axes = list(edge.axes)
        for j, m in enumerate(axes):
            if (m is None or m.window is not None or m.explicit is None or m.kind == "global"
                    or parent is None or not 0 <= m.src < len(parent.shape)
                    or m.explicit.shape[0] != (node.shape[j] if j < len(node.shape) else -1)):
                continue
            w = fit_window(m.explicit, parent.shape[m.src])
            if w is not None:
                axes[j], changed = AxisMap(m.src, w, m.explicit, m.kind), True
        edges.append(Edge(tuple(axes)))
    if not changed:
        return node
    return Node(node.name, node.op, node.inputs, tuple(edges), node.shape, node.path, node.source)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or walking a large graph.

    The graph's objects are acyclic and long-lived; the collector's full passes over them made
    100k-node analyses about 2x slower and superlinear. Reference counting still frees memory.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
