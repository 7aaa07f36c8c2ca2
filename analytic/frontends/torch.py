"""PyTorch frontend: ``torch.export`` at concrete shapes -> the IR of :mod:`analytic.graph`.

``capture(model, input_shape)`` exports ``model.eval()`` with ``torch.export.export(...,
strict=False)`` (the default IR keeps high-level aten ops: ``conv2d``, ``max_pool2d``,
``upsample_bilinear2d``, ``pad``, ...), walks the FX graph once and builds one IR node per op
that touches data derived from the input. Parameters, buffers, constants and ops on them only
are folded away. For every tensor it tracks which dims are spatial and which input axis each
one is (dims 2+ of the NC* input by default; ``spatial_dims=`` for other layouts), through
views, permutes and broadcasting. Each node keeps its module path (``layer3.5.conv3``, from
``nn_module_stack``) and the user's source line, so an end-point can be chosen by module path.

Every op needs a rule (``RULES``, ``erf ops torch`` lists them); an op without one is never
taken as identity: capture raises one :class:`~analytic.errors.UnsupportedOpError` listing
each such op with its count and first location. Ops without a rule that torch can decompose
are decomposed first (only those). Models whose export fails (data-dependent control flow)
raise :class:`~analytic.errors.CaptureError` with the export error.

Adding a rule
-------------
``analyze(model, shape, rules={torch.ops.aten.roll.default: my_rule})`` (keys: an op
overload, an overload packet such as ``torch.ops.aten.roll`` for all its overloads, or the
name ``"aten.roll.default"``). A rule is ``rule(call: OpCall) -> answer``:

- ``call.op``, ``call.args`` (schema name -> value, defaults filled; tensors are fx nodes),
  ``call.inputs`` (the input-dependent tensor arguments: ``.key`` = schema name or
  (name, index) inside a list, ``.shape``), ``call.out_shape`` / ``call.out_shapes``,
  ``call.shape(arg)`` and ``call.value(arg)`` for constant arguments.
- The answer: ``{key: maps}``, where ``maps`` has one entry per output dim: an
  :class:`~analytic.graph.AxisMap` whose ``src`` is the argument dim it reads (helpers in
  :mod:`analytic.frontends.torch_rules`: ``same(d)``, ``window(d, Window(...))``,
  ``reads(d, idx, kind)``, ``whole(d)``, ``bcast(d, n)``), or None (that output dim does not
  read the argument). Argument dims no entry reads are global (reduced). An input-dependent
  argument missing from the answer is read whole; ``{key: None}`` means no dependence.
  Shortcuts: ``call.pointwise()``, ``call.along(key, {dim: map})``; ``Relayout()`` for views,
  ``CONSTANT`` when the output ignores the input's values, ``PerOutput((a, b))`` for ops
  returning several tensors. Raise ``RuleError(reason)`` for a variant you cannot express.

For example ``torch.roll`` along dims (the built-in rule)::

    def roll(call):
        x = call.inputs[0]
        maps = {}
        for s, d in zip(call.args["shifts"], call.args["dims"]):
            n = x.shape[d]
            maps[d] = reads(d, ((np.arange(n) - s) % n)[:, None], "roll")
        return call.along(x.key, maps)
"""

from __future__ import annotations

import operator
import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from ..errors import CaptureError, ErfError, SpecError, UnsupportedOpError
from ..graph import Graph, Node
from . import torch_ops_tensor, torch_ops_window  # noqa: F401  (they register the rules)
from .torch_layout import Layout, input_layout, relayout, reshape, translate
from .torch_rules import (
                          CONSTANT,
                          RULES,
                          Arg,
                          OpCall,
                          PerOutput,
                          Relayout,
                          RuleError,
                          RuleTable,
)

__all__ = ["RULES", "Capture", "OpCall", "RuleError", "RuleTable", "capture", "supported_ops",
           "trace"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_UNKNOWN = object()  # the output of an op without a rule: the walk goes on to list them all


@dataclass
class Capture:
    """A traced model: the IR, the exported program, each node's torch layout, timings."""

    graph: Graph
    program: ExportedProgram
    layouts: dict[str, Layout] = field(repr=False)
    export_seconds: float = 0.0
    build_seconds: float = 0.0

    def torch_index(self, name: str, index: Sequence[int],
                    dims: Sequence[int] | None = None) -> tuple[int, ...]:
        """IR position of node ``name`` from an index into dims ``dims`` of its torch tensor
        (default: dims 2 and up, the NC* layout). Plain dims carry no IR axis and are ignored;
        a merged dim (tokens = h*W + w) is split into its axes' digits."""
        lay = self.layouts[self.graph.resolve(name)]
        dims = tuple(range(2, len(lay.dims))) if dims is None else tuple(dims)
        if len(index) != len(dims):
            raise SpecError(f"index {list(index)} does not match dims {list(dims)} of node "
                            f"{name!r}")
        pos = [0] * len(lay.node_shape)
        for d, i in zip(dims, index):
            rest = int(i)
            for f in reversed(lay.dims[d]):  # innermost factor first
                digit, rest = rest % f.size, rest // f.size
                if f.axis is not None:
                    pos[f.axis] += digit * f.stride
        return tuple(pos)


def capture(model: torch.nn.Module, input_shape: Sequence[int] | None = None,
            example_inputs: Any = None, rules: dict | None = None, **options: Any) -> Graph:
    """The IR of ``model`` at a concrete input shape (see the module doc)."""
    return trace(model, input_shape, example_inputs, rules, **options).graph


def trace(model: torch.nn.Module, input_shape: Sequence[int] | None = None,
          example_inputs: Any = None, rules: dict | None = None, *,
          spatial_dims: Sequence[int] | None = None, decompose: bool = True) -> Capture:
    """Export ``model`` and build its IR; returns the :class:`Capture` with timings.

    ``input_shape``: full shape, e.g. (1, 3, 224, 224); or ``example_inputs``: a tensor or a
    tuple of positional arguments (the first tensor is the analysed input, others are taken
    as constants). ``spatial_dims``: the input's spatial dims (default: 2 and up).
    ``decompose``: decompose ops without a rule when torch can.
    """
    if not isinstance(model, torch.nn.Module):
        raise SpecError(f"expected a torch.nn.Module, got {type(model).__name__}")
    args = _example_args(model, input_shape, example_inputs)
    t0 = time.perf_counter()
    program = _export(model, args)
    export_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    table = _user_rules(rules)
    if _needs_functionalization(program):
        program = program.run_decompositions({})
    decomposed: list[str] = []
    for attempt in range(4):
        try:
            graph, layouts = _Builder(program, table, spatial_dims).build()
            break
        except _Missing as missing:
            decomposable = {op: fn for op, fn in _decompositions().items()
                            if op in missing.ops} if decompose and attempt < 3 else {}
            if not decomposable:
                note = (f"\n(after decomposing {', '.join(decomposed)}, which have no rule)"
                        if decomposed else "")
                raise UnsupportedOpError(missing.message + note) from None
            decomposed += sorted(_op_name(op) for op in decomposable)
            program = program.run_decompositions(decomposable)
    return Capture(graph, program, layouts, export_seconds, time.perf_counter() - t1)


def supported_ops() -> list[tuple[str, str]]:
    """(op, rule name) for every op with a built-in rule, sorted by op (``erf ops torch``)."""
    return sorted((_op_name(op), fn.__name__) for op, fn in RULES)


# ---- export -----------------------------------------------------------------------------------


def _example_args(model: torch.nn.Module, input_shape: Sequence[int] | None,
                  example_inputs: Any) -> tuple:
    if example_inputs is not None:
        return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) \
            else (example_inputs,)
    if input_shape is None:
        raise SpecError("give input_shape (e.g. (1, 3, 224, 224)) or example_inputs")
    shape = tuple(int(n) for n in input_shape)
    if len(shape) < 2 or any(n < 1 for n in shape):
        raise SpecError(f"input_shape must be a full positive shape like (1, 3, 224, 224), "
                        f"got {list(shape)}")
    p = next(model.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    device = p.device if p is not None else torch.device("cpu")
    return (torch.randn(shape, dtype=dtype, device=device),)


def _export(model: torch.nn.Module, args: tuple) -> ExportedProgram:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(model, args, strict=False)
    except Exception as e:  # noqa: BLE001 - any export failure becomes one CaptureError
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        hint = ("the forward branches on tensor values (data-dependent control flow); make the "
                "branch depend on shapes only, use torch.cond, or analyze a submodule"
                if "data-dependent" in str(e).lower() or "guard" in str(e).lower() else
                "check that the model runs on an input of this shape, or pass example_inputs")
        raise CaptureError(f"torch.export failed for {type(model).__name__} at input shapes "
                           f"{[list(a.shape) for a in args if isinstance(a, torch.Tensor)]}: "
                           f"{type(e).__name__}: {first[:500]}. What next: {hint}.") from e
    finally:
        for m, mode in modes.items():
            m.training = mode


def _needs_functionalization(program: ExportedProgram) -> bool:
    """In-place ops are fine when they overwrite a tensor nothing else reads later (relu_ on a
    fresh activation, ``out += identity``); a mutation through a view, of an input, or of a
    tensor that is read again afterwards needs the functional form (``run_decompositions``
    turns slice assignment into slice_scatter)."""
    order = {n: i for i, n in enumerate(program.graph.nodes)}
    for n in program.graph.nodes:
        if n.op != "call_function" or not _is_inplace(n):
            continue
        chain = [n]  # the mutated tensor and the in-place results that alias it
        while _is_inplace(chain[-1]):
            target = chain[-1].args[0] if chain[-1].args else None
            if not isinstance(target, torch.fx.Node) or target.op != "call_function":
                return True  # mutating an input, a parameter or a buffer
            schema = getattr(target.target, "_schema", None)
            if schema is None or any(r.alias_info is not None and not r.alias_info.is_write
                                     for r in schema.returns):
                return True  # mutating a view
            chain.append(target)
        for t in chain[1:]:
            if any(order[u] > order[n] and u not in chain for u in t.users):
                return True
    return False


def _is_inplace(node: torch.fx.Node) -> bool:
    schema = getattr(node.target, "_schema", None)
    return node.op == "call_function" and schema is not None and schema.is_mutable


_DECOMP: dict | None = None


def _decompositions() -> dict:
    global _DECOMP
    if _DECOMP is None:
        from torch._decomp import decomposition_table
        _DECOMP = dict(decomposition_table)
    return _DECOMP


# ---- rules ------------------------------------------------------------------------------------


def _op_name(op: Any) -> str:
    name = str(op)
    return name if name.startswith("aten.") or "." in name else getattr(op, "__name__", name)


def _user_rules(rules: dict | None) -> dict:
    table: dict = {}
    for key, fn in (rules or {}).items():
        if not callable(fn):
            raise SpecError(f"the rule for {key} is not callable")
        if isinstance(key, str):
            table[key.removeprefix("torch.ops.").replace("::", ".")] = fn
        else:
            table[key] = fn
    return table


def _lookup(target: Any, user: dict) -> Any:
    for key in (target, getattr(target, "overloadpacket", None), str(target),
                str(getattr(target, "overloadpacket", ""))):
        if key is not None and key in user:
            return user[key]
    return RULES.get(target)


# ---- the walk ---------------------------------------------------------------------------------


class _Missing(Exception):
    def __init__(self, message: str, ops: set) -> None:
        super().__init__(message)
        self.message, self.ops = message, ops


def _location(node: torch.fx.Node) -> tuple[str, str]:
    """(module path, user source 'file:line') of an FX node."""
    stack = node.meta.get("nn_module_stack") or {}
    path = ""
    if stack:
        last = list(stack.values())[-1]
        path = last[0] if isinstance(last, tuple) else str(last)
    source = ""
    frames = re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or "")
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    if user:
        file, line = user[-1]
        try:
            rel = os.path.relpath(file)
            file = rel if not rel.startswith("..") else file
        except ValueError:
            pass
        source = f"{file}:{line}"
    return path, source


def _shape(val: Any) -> tuple[int, ...] | None:
    if isinstance(val, torch.Tensor):
        return tuple(int(n) for n in val.shape)
    return None


def _flat_nodes(args: Any, prefix: Any = None) -> list[tuple[Any, torch.fx.Node]]:
    """(key, node) of every fx node among bound arguments; key is the name or (name, i)."""
    out = []
    for name, v in args.items():
        if isinstance(v, torch.fx.Node):
            out.append((name, v))
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                if isinstance(x, torch.fx.Node):
                    out.append(((name, i), x))
    return out


def _bind(node: torch.fx.Node) -> dict[str, Any]:
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return {f"arg{i}": a for i, a in enumerate(node.args)} | dict(node.kwargs)
    bound: dict[str, Any] = {}
    for i, a in enumerate(schema.arguments):
        if i < len(node.args):
            bound[a.name] = node.args[i]
        elif a.name in node.kwargs:
            bound[a.name] = node.kwargs[a.name]
        elif a.has_default_value():
            bound[a.name] = a.default_value
        else:
            bound[a.name] = None
    return bound


class _Builder:
    """One walk over the exported FX graph (see the module doc)."""

    def __init__(self, program: ExportedProgram, user_rules: dict,
                 spatial_dims: Sequence[int] | None) -> None:
        self.program = program
        self.user_rules = user_rules
        self.spatial_dims = spatial_dims
        self.state: dict[torch.fx.Node, Any] = {}  # Layout | None | _UNKNOWN | pending tuple
        self.origins: dict[str, tuple[int | None, ...]] = {}
        self.layouts: dict[str, Layout] = {}
        self.missing: dict[str, list] = {}
        self.missing_ops: set = set()
        self.values: dict[torch.fx.Node, Any] = {}
        self.graph: Graph | None = None

    # ---- constants ----
    def _placeholder_values(self) -> dict[str, Any]:
        sig = self.program.graph_signature
        values: dict[str, Any] = {}
        for spec in sig.input_specs:
            if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                values[spec.arg.name] = self.program.state_dict.get(spec.target)
                if values[spec.arg.name] is None:
                    values[spec.arg.name] = self.program.constants.get(spec.target)
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                values[spec.arg.name] = self.program.constants.get(spec.target)
        return values

    def value(self, arg: Any) -> Any:
        """Concrete value of a constant argument (evaluates constant subgraphs on demand)."""
        if not isinstance(arg, torch.fx.Node):
            return arg
        if arg in self.values:
            return self.values[arg]
        if self.state.get(arg) is not None:
            raise RuleError(f"{arg.name} depends on the input; its value is not a constant")
        if arg.op == "placeholder":
            v = self._ph_values.get(arg.name)
            if v is None:
                raise RuleError(f"no value for {arg.name}")
        elif arg.op == "get_attr":
            v = getattr(self.program.graph_module, str(arg.target))
        else:
            args = torch.fx.node.map_arg(arg.args, self.value)
            kwargs = torch.fx.node.map_arg(arg.kwargs, self.value)
            with torch.no_grad():
                v = arg.target(*args, **kwargs)  # type: ignore[operator]
        self.values[arg] = v
        return v

    # ---- walk ----
    def build(self) -> tuple[Graph, dict[str, Layout]]:
        self._ph_values = self._placeholder_values()
        sig = self.program.graph_signature
        user_inputs = {s.arg.name for s in sig.input_specs if s.kind == InputKind.USER_INPUT}
        for node in self.program.graph.nodes:
            if node.op == "placeholder":
                self.state[node] = None
                shape = _shape(node.meta.get("val"))
                if self.graph is None and node.name in user_inputs and shape is not None:
                    self._input(node, shape)
            elif node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                self._output(node)
            else:
                self.state[node] = None
        if self.missing:
            raise _Missing(self._missing_message(), self.missing_ops)
        if self.graph is None:
            raise CaptureError("the exported program has no tensor input")
        return self.graph, self.layouts

    def _input(self, node: torch.fx.Node, shape: tuple[int, ...]) -> None:
        nd = len(shape)
        dims = tuple(range(2, nd)) if self.spatial_dims is None else tuple(
            int(d) % nd for d in self.spatial_dims)
        if not dims:
            raise SpecError(f"input {node.name} of shape {list(shape)} has no spatial dims; "
                            "pass an NC* shape such as (1, 3, 224, 224) or spatial_dims=")
        self.graph = Graph.with_input([shape[d] for d in dims], name=node.name)
        lay = input_layout(node.name, nd, dims, shape)
        self.state[node] = lay
        self.layouts[node.name] = lay
        self.origins[node.name] = tuple(range(len(dims)))

    def _output(self, node: torch.fx.Node) -> None:
        assert self.graph is not None
        leaves = torch.utils._pytree.tree_leaves(node.args[0])
        for leaf in leaves:
            st = self.state.get(leaf) if isinstance(leaf, torch.fx.Node) else None
            if isinstance(st, Layout) and st.node != self.graph.input:
                self.graph.output = st.node
                return

    def _call(self, node: torch.fx.Node) -> None:
        if node.target is operator.getitem:
            parent = self.state.get(node.args[0])
            if parent is None or parent is _UNKNOWN:
                self.state[node] = parent
                return
            self._finish(node, parent[1], parent[0][int(node.args[1])])  # type: ignore[index]
            return
        bound = _bind(node)
        deps = [(k, a) for k, a in _flat_nodes(bound) if self.state.get(a) is not None]
        if not deps:
            self.state[node] = None
            return
        val = node.meta.get("val")
        outs = list(val) if isinstance(val, (tuple, list)) else [val]
        out_shapes = [_shape(v) for v in outs]
        if all(s is None for s in out_shapes):
            self.state[node] = None  # asserts, sizes: no tensor output
            return
        rule = _lookup(node.target, self.user_rules)
        if rule is None:
            self._record(node, "no rule")
            self.state[node] = _UNKNOWN
            return
        if any(self.state[a] is _UNKNOWN for _, a in deps):
            self.state[node] = _UNKNOWN
            return
        path, source = _location(node)
        where = f"node {node.name} ({_op_name(node.target)}" + (f", module {path}" if path
                                                               else "") + \
            (f", {source}" if source else "") + ")"
        first = next((v for v in outs if isinstance(v, torch.Tensor)), None)
        call = OpCall(node.target, node.name, bound,
                      [Arg(k, a, self._shape_of(a)) for k, a in deps],
                      out_shapes, where, first.dtype if first is not None else None,
                      shape_of=self._shape_of, value_of=self.value)
        try:
            answer = rule(call)
        except RuleError as e:
            self._record(node, str(e))
            self.state[node] = _UNKNOWN
            return
        except ErfError:
            raise
        except Exception as e:  # noqa: BLE001 - a rule bug names the op and the node
            raise CaptureError(f"the rule {getattr(rule, '__name__', rule)!r} failed on "
                               f"{where}: {type(e).__name__}: {e}") from e
        if isinstance(answer, PerOutput):
            if len(answer.outputs) != len(outs):
                raise CaptureError(f"{where}: the rule gave {len(answer.outputs)} answers for "
                                   f"{len(outs)} outputs")
            self.state[node] = (list(answer.outputs), (call, deps, outs))
            return
        if len(outs) > 1:  # one answer for every output
            self.state[node] = ([answer] * len(outs), (call, deps, outs))
            return
        self._finish(node, (call, deps, outs), answer, out_index=0)

    def _finish(self, node: torch.fx.Node, ctx: tuple, answer: Any,
                out_index: int | None = None) -> None:
        call, deps, outs = ctx
        if out_index is None:
            out_index = int(node.args[1])
        shape = _shape(outs[out_index])
        if answer is None or answer is CONSTANT or shape is None:
            self.state[node] = None
            return
        assert self.graph is not None
        path, source = _location(node)
        inputs = [self.state[a] for _, a in deps]
        if isinstance(answer, Relayout):
            lay = inputs[0]
            if answer.perm is not None:
                dims, broken = [lay.dims[d] for d in answer.perm], set()
            else:
                dims, broken = reshape(lay, shape)
            t = relayout(lay, self.origins[lay.node], dims, broken)
            keep = [(k, a) for k, a in deps[:1]]
        else:
            if not isinstance(answer, dict):
                raise CaptureError(f"{call.where}: a rule must answer a dict {{argument: maps}},"
                                   f" Relayout(), CONSTANT or PerOutput(...); got "
                                   f"{type(answer).__name__}")
            keep, maps = [], []
            for k, a in deps:
                if k in answer:
                    m = answer[k]
                elif isinstance(k, tuple) and k[0] in answer:
                    m = answer[k[0]]  # one answer for every tensor of a list argument
                else:
                    m = (None,) * len(shape)  # not described: read whole (global)
                if m is None:
                    continue  # no dependence on this argument
                keep.append((k, a))
                maps.append(tuple(m))
            if not keep:
                self.state[node] = None
                return
            lays = [self.state[a] for _, a in keep]
            t = translate(lays, [self.origins[lay.node] for lay in lays], maps, shape,
                          call.where)
        name = node.name
        op = call.op.overloadpacket.__name__ if hasattr(call.op, "overloadpacket") \
            else _op_name(call.op)
        try:
            self.graph.add(Node(name, op, tuple(self.state[a].node for _, a in keep),
                                tuple(t.edges), t.shape, path=path, source=source))
        except ErfError as e:
            raise CaptureError(f"{call.where}: {e}") from e
        lay = Layout(name, t.dims, t.shape)
        self.state[node] = lay
        self.layouts[name] = lay
        self.origins[name] = t.origins

    def _shape_of(self, arg: Any) -> tuple[int, ...]:
        if isinstance(arg, torch.fx.Node):
            shape = _shape(arg.meta.get("val"))
            if shape is None:
                raise RuleError(f"{arg.name} is not a tensor")
            return shape
        if isinstance(arg, torch.Tensor):
            return tuple(arg.shape)
        raise RuleError(f"{arg!r} is not a tensor")

    def _record(self, node: torch.fx.Node, reason: str) -> None:
        name = _op_name(node.target)
        path, source = _location(node)
        entry = self.missing.get(name)
        if entry is None:
            self.missing[name] = [1, node.name, path, source, reason]
            if reason == "no rule":
                self.missing_ops.add(node.target)
        else:
            entry[0] += 1

    def _missing_message(self) -> str:
        n = len(self.missing)
        lines = [f"{n} op{'s' if n > 1 else ''} without a receptive-field rule (torch "
                 "frontend):"]
        width = max(len(k) for k in self.missing)
        for op, (count, first, path, source, reason) in self.missing.items():
            where = ", ".join(x for x in (f"module {path}" if path else "", source) if x)
            why = "" if reason == "no rule" else f"; {reason}"
            lines.append(f"  {op.ljust(width)}  x{count}  first at node {first}"
                         + (f" ({where})" if where else "") + why)
        lines.append("Pass rules={op: rule} to analyze() (see analytic.frontends.torch), or run "
                     "`erf ops torch` to list supported ops.")
        return "\n".join(lines)

