"""Fast capture: record the aten ops of one forward pass on meta tensors.

``torch.export`` costs 0.5-3 s per model; running the forward once on a meta input under a
``TorchDispatchMode`` (as ``torch.utils.flop_counter`` does) costs milliseconds. The recorder
builds a plain ``torch.fx.Graph`` with the same node metadata the export path has (``val``,
``nn_module_stack`` from global forward pre/post hooks, ``stack_trace`` with the innermost user
frame), so :class:`~analytic.frontends.torch_walk.Builder` walks both the same way.

What the recorder sees, and what it refuses (:class:`FastCaptureUnsupported`; ``capture="auto"``
then falls back to ``torch.export``):

- Tensors derived from the input are meta tensors; each op on them becomes a graph node.
- Every other tensor is a constant with a known value: parameters, buffers and tensors made in
  the forward (``torch.arange``, ``torch.tensor``, ``zeros(device=x.device)``). Ops on constants
  only are run for real (on CPU) and never recorded; a constant an op on the input reads becomes
  a placeholder holding its value (for rules that need values: index tensors).
- A branch on tensor values (``if x.sum() > 0``, ``.item()``, ``nonzero``) fails on meta
  tensors: refused (data-dependent control flow; ``torch.export`` reports it properly).
- In-place ops are kept as they are (``relu_``, ``out += identity``) when they overwrite an
  input-dependent tensor that shares its storage with no other tensor the recorder has seen
  (the functional reading is then exact). Mutating a view or a viewed tensor, a constant with
  input data, a parameter, a buffer or the input itself is refused (export functionalizes it).
- Ops without a rule that torch can decompose are decomposed while recording.
- Two functions are recorded whole, as export sees them, because their decompositions read
  worse: ``scaled_dot_product_attention`` (the causal mask becomes a constant added before a
  softmax: global) and circular ``pad`` (slice writes into a new tensor: refused).
"""

from __future__ import annotations

import inspect
import operator
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from . import torch_ops_shape, torch_ops_tensor, torch_ops_window  # noqa: F401  (rules)
from .torch_rules import lookup

_TORCH_DIR = os.path.dirname(torch.__file__)
_THIS = __file__.removesuffix("c")
_META = torch.device("meta")


class FastCaptureUnsupported(Exception):
    """The fast capture cannot record this model exactly; the reason says why."""


@dataclass
class FastProgram:
    """What :class:`~analytic.frontends.torch_walk.Builder` reads, from a recorded forward:
    the graph, the value of every constant placeholder, the user input's placeholder name."""

    graph: Any  # ``.nodes``: FX nodes in execution order
    placeholder_values: dict[str, Any] = field(repr=False)
    user_inputs: set[str]
    graph_module: Any = None


def _location() -> str:
    """``File "...", line n`` of the innermost frame outside torch and this file."""
    f = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_filename
        if not name.startswith(_TORCH_DIR) and name != _THIS:
            return f'File "{name}", line {f.f_lineno}'
        f = f.f_back
    return ""


def _meta_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty_strided(tuple(t.shape), tuple(t.stride()), dtype=t.dtype, device=_META)


def _map(args: tuple, kwargs: dict, fn: Any) -> tuple[tuple, dict]:
    """``fn`` applied to every tensor of an op's arguments (one level of lists, as aten has)."""
    def one(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return fn(x)
        if isinstance(x, (list, tuple)) and any(isinstance(y, torch.Tensor) for y in x):
            return type(x)(fn(y) if isinstance(y, torch.Tensor) else y for y in x)
        return x
    return tuple(one(x) for x in args), {k: one(v) for k, v in kwargs.items()}


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    out = []
    for x in (*args, *kwargs.values()):
        if isinstance(x, torch.Tensor):
            out.append(x)
        elif isinstance(x, (list, tuple)):
            out.extend(y for y in x if isinstance(y, torch.Tensor))
    return out


class _Nodes:
    """The recorded graph: FX nodes in execution order (no ``torch.fx.Graph``: creating nodes
    through it costs 25x more, in unique-name bookkeeping the walk does not need)."""

    def __init__(self) -> None:
        self.owner = torch.fx.Graph()
        self.nodes: list[torch.fx.Node] = []
        self.counts: dict[str, int] = {}

    def add(self, op: str, target: Any, args: tuple, kwargs: dict, name: str) -> torch.fx.Node:
        k = self.counts.get(name, 0)
        self.counts[name] = k + 1
        node = torch.fx.Node(self.owner, f"{name}_{k}" if k else name, op, target, args, kwargs)
        self.nodes.append(node)
        return node

    def __iter__(self):  # noqa: ANN204
        return iter(self.nodes)


class _Recorder(TorchDispatchMode):
    def __init__(self, user_rules: dict, paths: dict[int, str], decompose: bool) -> None:
        super().__init__()
        self.user_rules = user_rules
        self.decompose = decompose
        self.graph = _Nodes()
        self.nodes: dict[int, tuple[torch.Tensor, torch.fx.Node]] = {}  # input-dependent
        self.consts: dict[int, torch.Tensor] = {}  # meta shadow id -> real value
        self.shadows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # real id -> (real, meta)
        self.created: set[int] = set()  # constants made in the forward (may be mutated)
        self.storages: dict[int, set[int]] = {}  # storage -> ids of input-dependent tensors
        self.keep: list[Any] = []  # every tensor seen stays alive: ids are never reused
        self.paths = paths
        self.stack: list[str] = []
        self.getitems: list[torch.fx.Node] = []
        self.input_name = ""
        self.silent = 0  # inside a lifted function: run ops, record nothing

    # ---- module paths ----
    def pre_hook(self, module: torch.nn.Module, args: Any) -> None:
        path = self.paths.get(id(module))
        self.stack.append(path if path is not None else (self.stack[-1] if self.stack else ""))

    def post_hook(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        if isinstance(module, torch.nn.modules.dropout._DropoutNd) and \
                isinstance(out, torch.Tensor) and id(out) in self.nodes:
            # eval-mode dropout returns its input without an op; export keeps a node for it,
            # so the module stays an end-point: record the identity as aten.dropout
            node = self.graph.add("call_function", torch.ops.aten.dropout.default,
                                  (self.nodes[id(out)][1], float(module.p), False), {},
                                  "dropout")
            self._meta(node, out)
            self.nodes[id(out)] = (out, node)
        if self.stack:
            self.stack.pop()

    def _meta(self, node: torch.fx.Node, val: Any) -> None:
        node.meta["val"] = val
        path = self.stack[-1] if self.stack else ""
        if path:
            node.meta["nn_module_stack"] = {path: (path, "")}
        node.meta["stack_trace"] = _location()

    # ---- tensors ----
    def add_input(self, name: str, t: torch.Tensor) -> torch.Tensor:
        m = _meta_like(t)
        node = self.graph.add("placeholder", name, (), {}, name)
        node.meta["val"] = m
        self._track(m, node)
        self.input_name = node.name
        return m

    def _track(self, t: torch.Tensor, node: torch.fx.Node) -> None:
        self.keep.append(t)
        self.nodes[id(t)] = (t, node)
        self.storages.setdefault(t.untyped_storage()._cdata, set()).add(id(t))

    def _real(self, t: torch.Tensor) -> torch.Tensor:
        """The real value of a constant tensor (meta shadows map back)."""
        if not t.is_meta:
            return t
        v = self.consts.get(id(t))
        if v is None:
            raise FastCaptureUnsupported("a meta tensor the recorder did not make reached an op "
                                         "(a meta parameter or a tensor made outside forward)")
        return v

    def _shadow(self, t: torch.Tensor) -> torch.Tensor:
        if id(t) in self.nodes:
            return t
        if t.is_meta:
            self._real(t)  # checks that it is known
            return t
        s = self.shadows.get(id(t))
        if s is None:
            s = self.shadows[id(t)] = (t, _meta_like(t))
            self.consts[id(s[1])] = t
        return s[1]

    def _arg(self, t: torch.Tensor) -> Any:
        """A tensor as a node argument: its node, or the constant's real value."""
        entry = self.nodes.get(id(t))
        return entry[1] if entry is not None else self._real(t)

    # ---- ops ----
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.silent:
            margs, mkwargs = _map(args, kwargs, lambda t: t if t.is_meta else self._shadow(t))
            return func(*margs, **mkwargs)
        if not any(id(t) in self.nodes for t in _tensors(args, kwargs)):
            return self._constant_op(func, args, kwargs)
        if self.decompose and lookup(func, self.user_rules) is None:
            decomp = decompositions().get(func)
            if decomp is not None:
                with self:
                    return decomp(*args, **kwargs)
        mutated = _mutated_args(func, args, kwargs)
        for t in mutated:
            entry = self.nodes.get(id(t))
            if entry is None:
                raise FastCaptureUnsupported(f"{func} writes input-dependent data into a "
                                             "constant (a parameter, buffer or new tensor)")
            if entry[1].op == "placeholder":
                raise FastCaptureUnsupported(f"{func} mutates the input")
            if self.storages.get(t.untyped_storage()._cdata, set()) - {id(t)}:
                raise FastCaptureUnsupported(f"{func} mutates a tensor that shares its storage "
                                             "with another (a view); export functionalizes it")
        margs, mkwargs = _map(args, kwargs, self._shadow)
        out = _run_meta(func, margs, mkwargs, bool(mutated))
        if any(isinstance(o, torch.Tensor) and o.numel() == 0 for o in tree_flatten(out)[0]) \
                and not any(t.numel() == 0 for t in _tensors(margs, mkwargs)):
            # a meta kernel checks less than the real one (a kernel wider than its input)
            raise FastCaptureUnsupported(f"{func} made an empty tensor from non-empty inputs")
        nargs, nkwargs = _map(args, kwargs, self._arg)
        name = _export_name(func, args)
        node = self.graph.add("call_function", func, nargs, nkwargs, name)
        self._meta(node, out)
        node.meta["op_name"] = name
        if isinstance(out, torch.Tensor):
            self._retrack(out, node)
        elif isinstance(out, (tuple, list)):
            for i, o in enumerate(out):
                if isinstance(o, torch.Tensor):
                    g = self.graph.add("call_function", operator.getitem, (node, i), {},
                                       "getitem")
                    g.meta.update(node.meta, val=o)
                    self.getitems.append(g)
                    self._retrack(o, g)
        return out

    def lifted(self, func: Any, target: Any, args: tuple, kwargs: dict) -> Any:
        """One node for a function whose decomposition a rule cannot read as well as the
        function itself (attention's causal mask, circular padding's slice writes)."""
        if self.silent or not any(id(t) in self.nodes for t in _tensors(args, kwargs)):
            return func(*args, **kwargs)
        self.silent += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.silent -= 1
        if not isinstance(out, torch.Tensor):
            raise FastCaptureUnsupported(f"{target} returned {type(out).__name__}")
        nargs, nkwargs = _map(args, kwargs, self._arg)
        node = self.graph.add("call_function", target, nargs, nkwargs,
                              target.overloadpacket.__name__)
        self._meta(node, out)
        self._track(out, node)
        return out

    def _retrack(self, t: torch.Tensor, node: torch.fx.Node) -> None:
        if id(t) in self.nodes:  # in-place: the same tensor now holds the new value
            self.nodes[id(t)] = (t, node)
        else:
            self._track(t, node)

    def _constant_op(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """An op on constants only: run it for real; meta results stay meta, remembered."""
        tensors = _tensors(args, kwargs)
        meta = any(t.device == _META for t in tensors) or any(
            isinstance(x, torch.device) and x.type == "meta" for x in kwargs.values())
        for t in _mutated_args(func, args, kwargs):
            if id(self._real(t)) not in self.created and id(t) not in self.created:
                raise FastCaptureUnsupported(f"{func} mutates a parameter or buffer")
        rargs, rkwargs = _map(args, kwargs, self._real)
        rkwargs = {k: torch.device("cpu") if isinstance(v, torch.device) and v.type == "meta"
                   else v for k, v in rkwargs.items()}
        with torch.no_grad():
            out = func(*rargs, **rkwargs)
        if not meta:
            for x in tree_flatten(out)[0]:
                if isinstance(x, torch.Tensor):
                    self.created.add(id(x))
                    self.keep.append(x)
            return out
        inputs = {id(self._real(t)): t for t in tensors}

        def shadow(x: Any) -> Any:
            if not isinstance(x, torch.Tensor):
                return x
            if id(x) in inputs:  # in-place or an alias returned: the caller's tensor
                return inputs[id(x)]
            s = _meta_like(x)
            self.consts[id(s)] = x
            self.created.add(id(s))
            self.keep += [x, s]
            return s

        return tree_map(shadow, out)

    def finish(self, result: Any) -> None:
        leaves = tuple(self.nodes[id(x)][1] if isinstance(x, torch.Tensor) and id(x) in self.nodes
                       else None for x in tree_flatten(result)[0])
        self.graph.add("output", "output", (leaves,), {}, "output")
        dead = {g for g in self.getitems if not g.users}
        self.graph.nodes = [n for n in self.graph.nodes if n not in dead]


# ---- meta outputs --------------------------------------------------------------------------------
# Meta kernels of pointwise ops and batch norm are Python references (0.2-2 ms a call, more
# than the rest of the capture); an op's output metadata is a function of its arguments'
# metadata, so it is computed once per signature (shape, stride, dtype of each tensor argument,
# the other arguments' values) and remembered. Only for ops whose outputs are fresh tensors;
# views and in-place ops run their (fast, C++) meta kernels every time.

_OUT_META: dict[tuple, Any] = {}
_POINTWISE = torch.Tag.pointwise


def _key(func: Any, args: tuple, kwargs: dict) -> tuple | None:
    """The op and its arguments' metadata (tensors) and values (the rest); None if unhashable."""
    key: list[Any] = [func]
    for x in (*args, *(kv for item in sorted(kwargs.items()) for kv in item)):
        if isinstance(x, (list, tuple)):
            key.append(("list", len(x)))
            items: Sequence = x
        else:
            items = (x,)
        for y in items:
            if isinstance(y, torch.Tensor):
                key.append((tuple(y.shape), y.stride(), y.dtype))
            else:
                try:
                    hash(y)
                except TypeError:
                    return None
                key.append((type(y), y))
    return tuple(key)


_FRESH: dict[Any, bool] = {}


def _fresh_outputs(func: Any) -> bool:
    """Whether the op returns new tensors only (no views, no in-place)."""
    fresh = _FRESH.get(func)
    if fresh is None:
        schema = getattr(func, "_schema", None)
        fresh = _FRESH[func] = schema is not None and not schema.is_mutable and all(
            r.alias_info is None for r in schema.returns)
    return fresh


def _run_meta(func: Any, args: tuple, kwargs: dict, mutating: bool) -> Any:
    key = _key(func, args, kwargs) if not mutating and _fresh_outputs(func) else None
    if key is not None:
        hit = _OUT_META.get(key)
        if hit is not None:
            leaves, out_spec = hit
            return tree_unflatten([torch.empty_strided(*m[:2], dtype=m[2], device=_META)
                                   if isinstance(m, tuple) else m for m in leaves], out_spec)
    if key is not None and _POINTWISE in func.tags:
        out = _pointwise_meta(func, args, kwargs)
    else:
        out = func(*args, **kwargs)
    if key is not None:
        leaves, out_spec = tree_flatten(out)
        if all(isinstance(x, torch.Tensor) for x in leaves):
            if len(_OUT_META) > 4096:
                _OUT_META.clear()
            _OUT_META[key] = ([(tuple(x.shape), x.stride(), x.dtype) for x in leaves], out_spec)
    return out


def _pointwise_meta(func: Any, args: tuple, kwargs: dict) -> Any:
    """A pointwise op's output: broadcast shape, the dtype of the op on one-element stand-ins
    (0-dim tensors stay 0-dim: they promote like scalars), the layout of a same-shape input."""
    tensors = _tensors(args, kwargs)
    if not all(t.is_contiguous() for t in tensors):  # the output layout follows the inputs'
        return func(*args, **kwargs)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    targs, tkwargs = _map(args, kwargs, lambda x: torch.ones((1,) * x.dim(), dtype=x.dtype))
    try:
        with torch.no_grad():
            probe = func(*targs, **tkwargs)
    except Exception:  # noqa: BLE001 - the reference meta kernel decides then
        probe = None
    if not isinstance(probe, torch.Tensor):
        return func(*args, **kwargs)
    return torch.empty(shape, dtype=probe.dtype, device=_META)  # contiguous, as the inputs


_EXPORT_NAMES = {
    "native_batch_norm": "batch_norm", "_native_batch_norm_legit_no_training": "batch_norm",
    "_native_batch_norm_legit": "batch_norm", "constant_pad_nd": "pad",
    "max_pool1d_with_indices": "max_pool1d", "max_pool2d_with_indices": "max_pool2d",
    "max_pool3d_with_indices": "max_pool3d", "_adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "_adaptive_avg_pool3d": "adaptive_avg_pool3d", "addmm": "linear",
}


def _export_name(func: Any, args: tuple) -> str:
    """The op's name as export's graph has it (``conv2d``, not ``convolution``), for node names
    and the table: users pick end-points by these names too."""
    name = func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else str(func)
    if name == "convolution" and len(args) > 6:
        nd = len(args[3])
        return f"conv_transpose{nd}d" if args[6] else f"conv{nd}d"
    return _EXPORT_NAMES.get(name, name)


class _Lift(TorchFunctionMode):
    """Sends the few functions whose decomposition reads worse than the function (see
    :meth:`_Recorder.lifted`) to the recorder as one aten op."""

    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "scaled_dot_product_attention":
            return self.rec.lifted(func, torch.ops.aten.scaled_dot_product_attention.default,
                                   args, kwargs)
        if name == "pad" and (args[2] if len(args) > 2 else kwargs.get("mode")) == "circular":
            return self.rec.lifted(func, torch.ops.aten.pad.default, args, kwargs)
        return func(*args, **kwargs)


def _mutated_args(func: Any, args: Sequence, kwargs: dict) -> list[torch.Tensor]:
    schema = getattr(func, "_schema", None)
    if schema is None or not schema.is_mutable:
        return []
    out = []
    for i, a in enumerate(schema.arguments):
        if a.alias_info is not None and a.alias_info.is_write:
            v = args[i] if i < len(args) else kwargs.get(a.name)
            for t in tree_flatten(v)[0]:
                if isinstance(t, torch.Tensor):
                    out.append(t)
    return out


_DECOMP: dict | None = None


def decompositions() -> dict:
    """torch's decomposition table (op -> function), loaded once; both captures use it."""
    global _DECOMP
    if _DECOMP is None:
        from torch._decomp import decomposition_table
        _DECOMP = dict(decomposition_table)
    return _DECOMP


def record(model: torch.nn.Module, args: tuple, user_rules: dict,
           decompose: bool = True) -> FastProgram:
    """Run ``model(*args)`` once with ``args[0]`` on the meta device and record its ops.

    Raises :class:`FastCaptureUnsupported` with the reason where the recording would not be
    exact (see the module doc); any exception from the forward counts as such."""
    x = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if x is None:
        raise FastCaptureUnsupported("no tensor input")
    paths = {id(m): name for name, m in model.named_modules()}
    rec = _Recorder(user_rules, paths, decompose)
    try:
        params = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        params = []
    index = next(i for i, a in enumerate(args) if a is x)
    name = params[index] if index < len(params) else "x"
    meta_x = rec.add_input(name, x)
    call_args = tuple(meta_x if a is x else a for a in args)
    modes = {m: m.training for m in model.modules() if m.training}
    if modes:
        model.eval()
    pre = torch.nn.modules.module.register_module_forward_pre_hook(rec.pre_hook)
    post = torch.nn.modules.module.register_module_forward_hook(rec.post_hook)
    try:
        with torch.no_grad(), warnings.catch_warnings(), rec, _Lift(rec):
            warnings.simplefilter("ignore")
            result = model(*call_args)
    except FastCaptureUnsupported:
        raise
    except Exception as e:  # noqa: BLE001 - data-dependent control flow and the like
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise FastCaptureUnsupported(f"the forward failed on meta tensors: "
                                     f"{type(e).__name__}: {first[:300]}") from e
    finally:
        pre.remove()
        post.remove()
        for m, mode in modes.items():
            m.training = mode
    rec.finish(result)
    return FastProgram(rec.graph, {rec.input_name: None}, {rec.input_name})
