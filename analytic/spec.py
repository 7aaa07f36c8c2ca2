"""Layer specs: a graph written by hand in JSON or TOML, analysed without any framework.

```json
{"input": [8],
 "nodes": [{"name": "left", "op": "conv", "inputs": ["input"], "kernel": [5], "stride": [2],
            "pad": [[2, 1]]}, ...],
 "output": "sum"}
```
``input`` is the spatial shape; per-axis fields take one value for all axes or a list with one
entry per axis; ``pad`` takes an int, a list of ints (symmetric per axis), a list of
``[before, after]`` pairs, or ``"same"`` (TensorFlow SAME, input-size dependent) / ``"valid"``.
Nodes may be listed in any order; they are sorted topologically. The ops are in :data:`OPS`.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import indexmaps
from .errors import GraphError, SpecError
from .geometry import Window, same_pad
from .graph import AxisMap, Edge, Graph, Node, paused_gc

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

MAX_NODES = 1_000_000
MAX_SIZE = 2**31


class _Fields:
    """Typed access to one node's fields; every error names the node and the field."""

    def __init__(self, raw: dict, ndim: int, known: set[str]):
        self.raw, self.ndim = raw, ndim
        self.name = raw.get("name", "?")
        unknown = set(raw) - known - {"name", "op", "inputs"}
        if unknown:
            raise SpecError(f"node {self.name!r} (op {raw.get('op')}): unknown field(s) "
                            f"{sorted(unknown)}; allowed: {sorted(known)}")

    def fail(self, field: str, msg: str) -> SpecError:
        return SpecError(f"node {self.name!r}, field {field!r}: {msg}")

    def int_(self, field: str, default: int, low: int | None = None) -> int:
        v = self.raw.get(field, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(field, f"must be an integer, got {v!r}")
        if low is not None and v < low:
            raise self.fail(field, f"must be >= {low}, got {v}")
        if abs(v) > MAX_SIZE:
            raise self.fail(field, f"is too large ({v})")
        return v

    def per_axis(self, field: str, default: int, low: int | None = None) -> tuple[int, ...]:
        v = self.raw.get(field, default)
        values = [v] * self.ndim if not isinstance(v, list) else v
        if len(values) != self.ndim:
            raise self.fail(field, f"has {len(values)} entries for {self.ndim} spatial axes")
        out = []
        for x in values:
            if isinstance(x, bool) or not isinstance(x, int):
                raise self.fail(field, f"entries must be integers, got {x!r}")
            if low is not None and x < low:
                raise self.fail(field, f"must be >= {low}, got {x}")
            if abs(x) > MAX_SIZE:
                raise self.fail(field, f"is too large ({x})")
            out.append(x)
        return tuple(out)

    def pads(self, field: str = "pad") -> tuple[tuple[int, int], ...] | str:
        v = self.raw.get(field, 0)
        if isinstance(v, str):
            if v.lower() not in ("same", "valid"):
                raise self.fail(field, f"string padding must be 'same' or 'valid', got {v!r}")
            return v.lower()
        values = [v] * self.ndim if not isinstance(v, list) else v
        if len(values) != self.ndim:
            raise self.fail(field, f"has {len(values)} entries for {self.ndim} spatial axes")
        out = []
        for x in values:
            pair = x if isinstance(x, list) else [x, x]
            if len(pair) != 2 or any(isinstance(p, bool) or not isinstance(p, int) for p in pair):
                raise self.fail(field, f"entries must be ints or [before, after] pairs, got {x!r}")
            if any(abs(p) > MAX_SIZE for p in pair):
                raise self.fail(field, f"is too large ({x})")
            out.append((pair[0], pair[1]))
        return tuple(out)

    def choice(self, field: str, default: str, options: Sequence[str]) -> str:
        v = self.raw.get(field, default)
        if v not in options:
            raise self.fail(field, f"must be one of {list(options)}, got {v!r}")
        return v

    def bool_(self, field: str, default: bool) -> bool:
        v = self.raw.get(field, default)
        if not isinstance(v, bool):
            raise self.fail(field, f"must be true or false, got {v!r}")
        return v


Builder = Callable[[_Fields, list[Node]], tuple[tuple[Edge, ...], tuple[int, ...]]]
OPS: dict[str, tuple[set[str], Builder]] = {}


def _op(name: str, *fields: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        if name in OPS:
            raise RuntimeError(f"spec op {name!r} registered twice")
        OPS[name] = (set(fields), fn)
        return fn
    return register


def _one_input(f: _Fields, parents: list[Node]) -> Node:
    if len(parents) != 1:
        raise f.fail("inputs", f"op {f.raw['op']!r} takes exactly 1 input, got {len(parents)}")
    return parents[0]


def _windows(f: _Fields, shape: tuple[int, ...]) -> list[Window]:
    kernel = f.per_axis("kernel", 1, low=1)
    stride = f.per_axis("stride", 1, low=1)
    dilation = f.per_axis("dilation", 1, low=1)
    pads = f.pads()
    if pads == "same":
        pads = tuple(same_pad(n, k, s, d) for n, k, s, d in zip(shape, kernel, stride, dilation))
    elif pads == "valid":
        pads = ((0, 0),) * f.ndim
    return [Window(kernel=k, stride=s, dilation=d, pad=p)
            for k, s, d, p in zip(kernel, stride, dilation, pads)]


@_op("conv", "kernel", "stride", "dilation", "pad")
@_op("pool", "kernel", "stride", "dilation", "pad", "ceil_mode")
def sliding_window(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    ws = _windows(f, parent.shape)
    ceil = f.bool_("ceil_mode", False)
    shape = tuple(w.out_size(n, ceil) for w, n in zip(ws, parent.shape))
    if any(n < 1 for n in shape):
        raise f.fail("kernel", f"window larger than its padded input {list(parent.shape)}: "
                     f"output shape would be {list(shape)}")
    return (Edge.windows(ws),), shape


@_op("pad", "pad", "mode")
def padding(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    pads = f.pads()
    if isinstance(pads, str):
        raise f.fail("pad", "a pad op takes explicit amounts, not 'same'/'valid'")
    mode = f.choice("mode", "constant", ("constant", "reflect", "replicate", "circular"))
    axes, shape = [], []
    for a, (n, (b, e)) in enumerate(zip(parent.shape, pads)):
        if n + b + e < 1:
            raise f.fail("pad", f"crops axis {a} of size {n} to nothing")
        w = Window(pad=(b, e))
        explicit = None if mode == "constant" else indexmaps.padded(n, b, e, mode)
        axes.append(AxisMap(a, w, explicit, "pad" if mode == "constant" else f"pad {mode}"))
        shape.append(n + b + e)
    return (Edge(tuple(axes)),), tuple(shape)


@_op("pointwise")
def pointwise(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    return (Edge.pointwise(f.ndim),), parent.shape


@_op("add")
@_op("mul")
def elementwise_merge(f: _Fields, parents: list[Node]):
    shapes = {p.shape for p in parents}
    if len(shapes) != 1:
        raise f.fail("inputs", f"inputs have different shapes "
                     f"{ {p.name: list(p.shape) for p in parents} }")
    return tuple(Edge.pointwise(f.ndim) for _ in parents), parents[0].shape


@_op("concat", "axis")
def concat(f: _Fields, parents: list[Node]):
    axis = f.raw.get("axis", "channel")
    if axis == "channel":
        return elementwise_merge(f, parents)
    if isinstance(axis, bool) or not isinstance(axis, int) or not 0 <= axis < f.ndim:
        raise f.fail("axis", f"must be 'channel' or a spatial axis 0..{f.ndim - 1}, got {axis!r}")
    others = {p.shape[:axis] + p.shape[axis + 1:] for p in parents}
    if len(others) != 1:
        raise f.fail("inputs", f"shapes differ off axis {axis}: "
                     f"{ {p.name: list(p.shape) for p in parents} }")
    total = sum(p.shape[axis] for p in parents)
    edges, offset = [], 0
    for p in parents:
        axes = list(Edge.pointwise(f.ndim).axes)
        pad = (offset, total - offset - p.shape[axis])
        axes[axis] = AxisMap(axis, Window(pad=pad), None, "spatial concat")
        edges.append(Edge(tuple(axes)))
        offset += p.shape[axis]
    shape = list(parents[0].shape)
    shape[axis] = total
    return tuple(edges), tuple(shape)


@_op("conv_transpose", "kernel", "stride", "dilation", "pad", "output_padding")
def conv_transpose(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    kernel = f.per_axis("kernel", 1, low=1)
    stride = f.per_axis("stride", 1, low=1)
    dilation = f.per_axis("dilation", 1, low=1)
    outpad = f.per_axis("output_padding", 0, low=0)
    pads = f.pads()
    if isinstance(pads, str):
        raise f.fail("pad", "conv_transpose takes explicit padding")
    axes, shape = [], []
    for a, (n, k, s, d, (b, e), op) in enumerate(
            zip(parent.shape, kernel, stride, dilation, pads, outpad)):
        if op >= max(s, d):
            raise f.fail("output_padding", f"must be smaller than stride or dilation on axis {a}")
        size = (n - 1) * s - b - e + d * (k - 1) + 1 + op
        if size < 1:
            raise f.fail("pad", f"output size on axis {a} would be {size}")
        reads = indexmaps.transposed(n, size, k, s, d, b)
        axes.append(AxisMap(a, None, reads, "transposed conv"))
        shape.append(size)
    return (Edge(tuple(axes)),), tuple(shape)


@_op("upsample", "mode", "scale", "size", "align_corners")
def upsample(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    mode = f.choice("mode", "nearest", ("nearest", "nearest-exact", "bilinear", "linear"))
    if ("scale" in f.raw) == ("size" in f.raw):
        raise f.fail("scale", "give exactly one of 'scale' and 'size'")
    if "size" in f.raw:
        size = f.per_axis("size", 1, low=1)
    else:
        scale = f.raw["scale"]
        scales = scale if isinstance(scale, list) else [scale] * f.ndim
        if len(scales) != f.ndim or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                            and 0 < x < 1e6 for x in scales):
            raise f.fail("scale", f"must be a positive number or one per axis, got {scale!r}")
        size = tuple(max(int(math.floor(n * x)), 1) for n, x in zip(parent.shape, scales))
    align = f.bool_("align_corners", False)
    axes = []
    for a, (n, m) in enumerate(zip(parent.shape, size)):
        if mode.startswith("nearest"):
            reads = indexmaps.nearest(n, m, exact=mode == "nearest-exact")
        else:
            reads = indexmaps.linear(n, m, align)
        axes.append(AxisMap(a, None, reads, f"upsample {mode}"))
    return (Edge(tuple(axes)),), tuple(size)


@_op("pixel_shuffle", "factor")
def pixel_shuffle(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    factor = f.int_("factor", 2, low=1)
    axes = tuple(AxisMap(a, None, indexmaps.pixel_shuffle(n, factor), "pixel shuffle")
                 for a, n in enumerate(parent.shape))
    return (Edge(axes),), tuple(n * factor for n in parent.shape)


@_op("pixel_unshuffle", "factor")
def pixel_unshuffle(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    factor = f.int_("factor", 2, low=1)
    if any(n % factor for n in parent.shape):
        raise f.fail("factor", f"must divide every axis of {list(parent.shape)}")
    w = Window(kernel=factor, stride=factor)
    return (Edge.windows([w] * f.ndim),), tuple(n // factor for n in parent.shape)


@_op("slice", "start", "stop", "step")
def slice_(f: _Fields, parents: list[Node]):
    parent = _one_input(f, parents)
    start = f.per_axis("start", 0)
    step = f.per_axis("step", 1, low=1)
    stop_raw = f.raw.get("stop")
    stop = parent.shape if stop_raw is None else f.per_axis("stop", 0)
    windows, shape = [], []
    for a, (n, b, e, s) in enumerate(zip(parent.shape, start, stop, step)):
        b, e, _ = slice(b, e, s).indices(n)
        m = len(range(b, e, s))
        if m < 1:
            raise f.fail("start", f"slice {b}:{e}:{s} of axis {a} (size {n}) is empty")
        windows.append(Window(stride=s, pad=(-b, 0)))
        shape.append(m)
    return (Edge.windows(windows, "slice"),), tuple(shape)


@_op("global")
def global_(f: _Fields, parents: list[Node]):
    """Global pooling: every axis reduced to size 1. An axis that already has size 1 is read in
    place (a kernel-1 window, as the frameworks' reductions over a kept size-1 dim are): its
    one position need not see the whole input, so r, S, P stay defined there."""
    parent = _one_input(f, parents)
    axes = tuple(AxisMap(a, Window(), None, "global") if n == 1 else AxisMap.whole(a, n, 1)
                 for a, n in enumerate(parent.shape))
    return (Edge(axes),), (1,) * f.ndim


# ---- loading ----------------------------------------------------------------------------


def parse_spec_text(text: str, fmt: str, where: str = "spec", what: str = "a layer spec") -> dict:
    """Parse JSON or TOML text; errors name the file and the position."""
    try:
        if fmt == "json":
            return json.loads(text)
        return tomllib.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{where}: malformed JSON at line {e.lineno}, column {e.colno}: "
                        f"{e.msg}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where}: malformed TOML: {e}") from None
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply to be {what}") from None


def load_spec(source: str | Path | dict, input_shape: Sequence[int] | None = None) -> Graph:
    """Build a :class:`Graph` from a spec file (``.json`` / ``.toml``) or an already-parsed dict.

    ``input_shape`` overrides the spec's ``input`` (spatial shape).
    """
    where = "spec"
    if not isinstance(source, (str, Path)):
        raw = source
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise SpecError(f"spec file {where} does not exist (give a .json or .toml layer spec)")
        fmt = "toml" if path.suffix.lower() == ".toml" else "json"
        if path.suffix.lower() not in (".json", ".toml"):
            raise SpecError(f"{where}: unknown spec format {path.suffix!r}; use .json or .toml")
        raw = parse_spec_text(path.read_text(), fmt, where)
    with paused_gc():
        try:
            return _build(raw, input_shape, where)
        except SpecError as e:  # node and field errors: name the file too
            if where == "spec" or str(e).startswith(where):
                raise
            raise type(e)(f"{where}: {e}") from None


def _build(raw: Any, input_shape: Sequence[int] | None, where: str) -> Graph:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: the top level must be an object with input, nodes, output")
    unknown = set(raw) - {"input", "nodes", "output", "name", "description"}
    if unknown:
        raise SpecError(f"{where}: unknown top-level key(s) {sorted(unknown)}; "
                        "allowed: input, nodes, output, name, description")
    shape = raw.get("input") if input_shape is None else list(input_shape)
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape)):
        raise SpecError(f"{where}: 'input' must be the spatial shape, a list of integers "
                        f"such as [224, 224]; got {shape!r}")
    if any(not 1 <= n <= MAX_SIZE for n in shape):
        raise SpecError(f"{where}: 'input' sizes must be between 1 and {MAX_SIZE}, got {shape}")
    nodes = raw.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise SpecError(f"{where}: 'nodes' must be a non-empty list of node objects")
    if len(nodes) > MAX_NODES:
        raise SpecError(f"{where}: {len(nodes)} nodes is more than the limit {MAX_NODES}")
    by_name: dict[str, dict] = {}
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            raise SpecError(f"{where}: node #{i} must be an object, got {type(n).__name__}")
        name = n.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError(f"{where}: node #{i} needs a non-empty string 'name'")
        if name in by_name or name == "input":
            raise SpecError(f"{where}: node name {name!r} is used twice (or is 'input')")
        op = n.get("op")
        if op not in OPS:
            raise SpecError(f"{where}: node {name!r}: unknown op {op!r}; supported ops: "
                            f"{', '.join(sorted(OPS))}")
        inputs = n.get("inputs")
        if (not isinstance(inputs, list) or not inputs
                or not all(isinstance(x, str) for x in inputs)):
            raise SpecError(f"{where}: node {name!r}: 'inputs' must be a non-empty list of "
                            "node names ('input' is the graph input)")
        by_name[name] = n
    for name, n in by_name.items():
        for x in n["inputs"]:
            if x != "input" and x not in by_name:
                raise SpecError(f"{where}: node {name!r}: unknown input {x!r}")
    order = _toposort(by_name, where)
    graph = Graph.with_input(shape)
    for name in order:
        n = by_name[name]
        known, builder = OPS[n["op"]]
        fields = _Fields(n, len(shape), known)
        parents = [graph[x] for x in n["inputs"]]
        edges, out_shape = builder(fields, parents)
        graph.add(Node(name, n["op"], tuple(n["inputs"]), edges, tuple(int(s) for s in out_shape),
                       path=name))
    output = raw.get("output", order[-1])
    if not isinstance(output, str) or output not in by_name:
        raise SpecError(f"{where}: 'output' {output!r} is not a node name")
    if graph.input not in graph.ancestors([output]):
        raise GraphError(f"{where}: output {output!r} is not reachable from the input")
    graph.output = output
    return graph


def _toposort(by_name: dict[str, dict], where: str) -> list[str]:
    """Topological order, iterative (no recursion limit), keeping the file's order where it is
    already topological (readable tables); a cycle is an error naming its nodes."""
    pos = {name: i for i, name in enumerate(by_name)}
    names = list(by_name)
    indeg = {name: sum(1 for x in n["inputs"] if x != "input") for name, n in by_name.items()}
    users: dict[str, list[str]] = {name: [] for name in by_name}
    for name, n in by_name.items():
        for x in n["inputs"]:
            if x != "input":
                users[x].append(name)
    heap = [pos[name] for name, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        name = names[heapq.heappop(heap)]
        order.append(name)
        for u in users[name]:
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(heap, pos[u])
    if len(order) != len(by_name):
        cyc = sorted(name for name, d in indeg.items() if d > 0)
        raise GraphError(f"{where}: the nodes form a cycle (involving {', '.join(cyc[:10])})")
    return order


def spec_ops() -> list[tuple[str, list[str]]]:
    """The spec ops and their fields (for `erf ops`)."""
    return [(name, sorted(fields)) for name, (fields, _) in sorted(OPS.items())]

