"""The walk over an exported FX graph: one IR node per op on input-dependent data.

Used by :mod:`analytic.frontends.torch`; see its docstring for the model of the walk.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from ..errors import CaptureError, ErfError, SpecError
from ..graph import Graph, Node
from .torch_fast import FastProgram
from .torch_layout import Layout, input_layout, translate
from .torch_rules import CONSTANT, Arg, OpCall, PerOutput, Relayout, RuleError, lookup, op_name
from .torch_views import relayout, reshape

_TORCH_DIR = os.path.dirname(torch.__file__)
_UNKNOWN = object()  # the output of an op without a rule: the walk goes on to list them all


class Missing(Exception):
    """Ops without a rule (or whose rule refused), with the message the user will see."""

    def __init__(self, message: str, ops: set) -> None:
        super().__init__(message)
        self.message, self.ops = message, ops


def _location(node: torch.fx.Node) -> tuple[str, str]:
    """(module path, user source 'file:line') of an FX node."""
    cached = node.meta.get("erf_location")
    if cached is None:
        cached = node.meta["erf_location"] = _find_location(node)
    return cached


def _find_location(node: torch.fx.Node) -> tuple[str, str]:
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


def _flat_nodes(args: dict[str, Any]) -> list[tuple[Any, torch.fx.Node]]:
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


class Builder:
    """One walk over the FX graph of an exported program or of a fast capture's recording
    (:class:`~analytic.frontends.torch_fast.FastProgram`: the same node metadata, constants
    as placeholders with values)."""

    def __init__(self, program: ExportedProgram | FastProgram, user_rules: dict,
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
        own = getattr(self.program, "placeholder_values", None)  # a FastProgram
        if own is not None:
            return own
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
        user_inputs = getattr(self.program, "user_inputs", None)
        if user_inputs is None:
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
            raise Missing(self._missing_message(), self.missing_ops)
        if self.graph is None:
            raise CaptureError("the exported program has no tensor input")
        return self.graph, self.layouts

    def _input(self, node: torch.fx.Node, shape: tuple[int, ...]) -> None:
        nd = len(shape)
        dims = tuple(range(2, nd)) if self.spatial_dims is None else tuple(
            int(d) % nd for d in self.spatial_dims)
        if not dims:
            raise SpecError(f"the model input {node.name!r} of shape {list(shape)} has no "
                            "spatial dims (dims 2 and up of an NC* input are spatial), so it "
                            "has no receptive field; pass an NC* shape such as (1, 3, 224, 224),"
                            " or spatial_dims= for another layout")
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
        rule = lookup(node.target, self.user_rules)
        if rule is None:
            self._record(node, "no rule")
            self.state[node] = _UNKNOWN
            return
        if any(self.state[a] is _UNKNOWN for _, a in deps):
            self.state[node] = _UNKNOWN
            return
        path, source = _location(node)
        where = f"node {node.name} ({op_name(node.target)}" + (f", module {path}" if path
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
                dims, broken = [lay.dims[d] if d is not None else () for d in answer.perm], set()
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
        op = node.meta.get("op_name") or (  # the fast capture names ops as export does
            call.op.overloadpacket.__name__ if hasattr(call.op, "overloadpacket")
            else op_name(call.op))
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
        name = op_name(node.target)
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

