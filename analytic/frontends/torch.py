"""PyTorch frontend: a recorded forward or ``torch.export`` at concrete shapes -> the IR.

``capture(model, input_shape)`` records one forward pass of ``model.eval()`` on meta tensors
(:mod:`~analytic.frontends.torch_fast`; ``capture="auto"``, the default, falls back to export
where that is refused) or exports it with ``torch.export.export(..., strict=False)`` (the IR
keeps high-level aten ops: ``conv2d``, ``max_pool2d``, ``upsample_bilinear2d``, ``pad``, ...),
walks the FX graph once and builds one IR node per op
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

import contextlib
import io
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.export import ExportedProgram

from ..errors import CaptureError, SpecError, UnsupportedOpError
from ..graph import Graph
from ..limits import SMALLER, check_memory
from . import torch_ops_shape, torch_ops_tensor, torch_ops_window  # noqa: F401  (rules)
from .torch_fast import FastCaptureUnsupported, FastProgram, decompositions, record
from .torch_layout import Layout
from .torch_rules import RULES, OpCall, RuleError, RuleTable, op_name, user_rules
from .torch_walk import Builder, Missing

_TORCH_DIR = os.path.dirname(torch.__file__)

__all__ = ["RULES", "Capture", "OpCall", "RuleError", "RuleTable", "capture", "supported_ops",
           "trace"]

@dataclass
class Capture:
    """A traced model: the IR, the captured program, each node's torch layout, timings.

    ``method``: ``"fast"`` (``program`` is a :class:`FastProgram`, ``export_seconds`` the
    recording's time) or ``"export"`` (an ``ExportedProgram``); ``fallback``: why the fast
    capture was refused, when ``capture="auto"`` fell back to export."""

    graph: Graph
    program: ExportedProgram | FastProgram
    layouts: dict[str, Layout] = field(repr=False)
    export_seconds: float = 0.0
    build_seconds: float = 0.0
    method: str = "export"
    fallback: str = ""

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
          spatial_dims: Sequence[int] | None = None, decompose: bool = True,
          capture: str = "auto") -> Capture:
    """Capture ``model`` and build its IR; returns the :class:`Capture` with timings.

    ``input_shape``: full shape, e.g. (1, 3, 224, 224); or ``example_inputs``: a tensor or a
    tuple of positional arguments (the first tensor is the analysed input, others are taken
    as constants). ``spatial_dims``: the input's spatial dims (default: 2 and up).
    ``decompose``: decompose ops without a rule when torch can.
    ``capture``: ``"fast"`` records one forward pass on meta tensors
    (:mod:`~analytic.frontends.torch_fast`, milliseconds), ``"export"`` uses ``torch.export``
    (seconds), ``"auto"`` tries fast and falls back to export where the recording is refused
    (data-dependent control flow, in-place writes through views, ops without a rule);
    ``Capture.method`` says which ran and ``Capture.fallback`` why.
    """
    if not isinstance(model, torch.nn.Module):
        raise SpecError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if capture not in ("auto", "fast", "export"):
        raise SpecError(f"capture={capture!r}: use 'auto', 'fast' or 'export'")
    args = _example_args(model, input_shape, example_inputs)
    table = user_rules(rules)
    fallback = ""
    if capture != "export":
        try:
            return _trace_fast(model, args, table, spatial_dims, decompose)
        except (FastCaptureUnsupported, Missing) as e:
            reason = e.message if isinstance(e, Missing) else str(e)
            if capture == "fast":
                if isinstance(e, Missing):
                    raise UnsupportedOpError(e.message) from None
                raise CaptureError(f"fast capture of {type(model).__name__} refused: {reason}. "
                                   "What next: capture='export' (or 'auto').") from None
            fallback = reason.splitlines()[0]
    t0 = time.perf_counter()
    program = _export(model, args)
    export_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    if _needs_functionalization(program):
        program = _decompose(program, {})
    decomposed: list[str] = []
    for attempt in range(4):
        try:
            graph, layouts = Builder(program, table, spatial_dims).build()
            break
        except Missing as missing:
            decomposable = {op: fn for op, fn in decompositions().items()
                            if op in missing.ops} if decompose and attempt < 3 else {}
            if not decomposable:
                note = (f"\n(after decomposing {', '.join(decomposed)}, which have no rule)"
                        if decomposed else "")
                raise UnsupportedOpError(missing.message + note) from None
            decomposed += sorted(op_name(op) for op in decomposable)
            program = _decompose(program, decomposable)
    return Capture(graph, program, layouts, export_seconds, time.perf_counter() - t1,
                   method="export", fallback=fallback)


def _trace_fast(model: torch.nn.Module, args: tuple, table: dict,
                spatial_dims: Sequence[int] | None, decompose: bool) -> Capture:
    t0 = time.perf_counter()
    program = record(model, args, table, decompose)
    t1 = time.perf_counter()
    graph, layouts = Builder(program, table, spatial_dims).build()
    return Capture(graph, program, layouts, t1 - t0, time.perf_counter() - t1, method="fast")


def supported_ops() -> list[tuple[str, str]]:
    """(op, rule name) for every op with a built-in rule, sorted by op (``erf ops torch``)."""
    return sorted((op_name(op), fn.__name__) for op, fn in RULES)


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
    check_memory(math.prod(shape) * dtype.itemsize,
                 f"an example input of shape {list(shape)} ({dtype})",
                 f"{SMALLER} Or pass example_inputs= yourself.")
    return (torch.randn(shape, dtype=dtype, device=device),)


def _export(model: torch.nn.Module, args: tuple) -> ExportedProgram:
    """``torch.export`` in eval mode. What torch prints while exporting (graph dumps, log lines
    on a failed guard) is held back and shown again only if the export succeeds (a model's own
    prints); a failure becomes one :class:`CaptureError` naming the user's source line."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    printed = io.StringIO()
    logging.disable(logging.ERROR)  # a failure becomes a CaptureError; torch logs it too
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed), \
                contextlib.redirect_stderr(printed):
            warnings.simplefilter("ignore")
            program = torch.export.export(model, args, strict=False)
    except Exception as e:  # noqa: BLE001 - any export failure becomes one CaptureError
        text = str(e).strip()
        first = text.splitlines()[0] if text else ""
        data_dependent = "data-dependent" in text.lower() or "guard" in text.lower()
        hint = ("the forward branches on tensor values (data-dependent control flow); make the "
                "branch depend on shapes only, use torch.cond, or analyze a submodule"
                if data_dependent else
                "check that the model runs on an input of this shape, or pass example_inputs")
        where = _user_frame(e)
        raise CaptureError(f"torch.export failed for {type(model).__name__} at input shapes "
                           f"{[list(a.shape) for a in args if isinstance(a, torch.Tensor)]}"
                           f"{f' at {where}' if where else ''}: {type(e).__name__}: "
                           f"{first[:500]}. What next: {hint}.") from e
    finally:
        logging.disable(logging.NOTSET)
        for m, mode in modes.items():
            m.training = mode
    if printed.getvalue():
        print(printed.getvalue(), end="")
    return program


def _user_frame(e: BaseException) -> str:
    """'file:line (code)' of the innermost frame outside torch that raised ``e``: from torch's
    message ("The following call raised this error") or else the traceback."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in \w+\n\s*(.*)', str(e))
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, str(tb.tb_lineno), ""))
        tb = tb.tb_next
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR) and "analytic" + os.sep
            + "frontends" not in f[0] and "<" not in f[0]]
    if not user:
        return ""
    file, line, code = user[0] if "raised this error" in str(e) else user[-1]
    rel = os.path.relpath(file) if not os.path.relpath(file).startswith("..") else file
    return f"{rel}:{line}" + (f" ({code.strip()})" if code.strip() else "")


def _needs_functionalization(program: ExportedProgram) -> bool:
    """Whether to run ``run_decompositions({})`` (functional form, no op decomposed).

    In-place ops are fine when they overwrite a tensor nothing else reads later (relu_ on a
    fresh activation, ``out += identity``); a mutation through a view, of an input, or of a
    tensor that is read again afterwards needs the functional form (``run_decompositions``
    turns slice assignment into slice_scatter)."""
    order = {n: i for i, n in enumerate(program.graph.nodes)}
    for n in program.graph.nodes:
        if isinstance(n.target, torch._ops.HigherOrderOperator):
            return True  # e.g. `with torch.no_grad():` in forward; inlined by the same pass
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


def _decompose(program: ExportedProgram, table: dict) -> ExportedProgram:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return program.run_decompositions(table)
