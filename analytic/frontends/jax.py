"""JAX frontend: a JAX function's jaxpr at concrete shapes -> the analytic IR.

What can be analysed (``analyze(target, input_shape, ...)``):

- a function of one array, ``fn(x)`` (plain ``jax.numpy``/``lax`` code, jitted or not);
- a pair ``(fn, params)``: analysed as ``fn(params, x)``; parameters are treated as unknown
  dense weights (their values are never read);
- a Flax linen module, bound (``module.bind(variables)``) or as ``(module, variables)``; an
  unbound module without variables is initialised abstractly (``jax.eval_shape``), so no
  weights are computed. ``call_kwargs={...}`` go to the call (e.g. ``train=False``).

``input_shape`` is the full shape of x (e.g. ``(1, 224, 224, 3)``), or pass
``example_inputs=x`` (an array or ``jax.ShapeDtypeStruct``).

**Layout** (``layout=``): one letter per dimension of x. ``N`` batch, ``C`` channels (any of
``N C B F G _`` is non-spatial); ``H W D T X Y Z S`` are spatial, and the input's spatial
axes are numbered in the order the letters appear, so ``"NCHW"`` and ``"NHWC"`` both give
axes (H, W), as the PyTorch frontend does. Default: channels last (the Flax convention),
``"NWC"``, ``"NHWC"``, ``"NDHWC"`` for 3-, 4-, 5-D inputs; other ranks need ``layout``.
Batch and channels are never tracked: an op that mixes them (a convolution, a dense layer)
mixes nothing spatial. Analyse with batch size 1 if batch-mixing ops (batch norm in training
mode) are present.

**Nodes.** Every equation that computes on input-dependent data becomes a node named
``<primitive>_<k>`` (``conv_general_dilated_0``); pure layout ops (transpose, reshape,
squeeze, broadcast, dtype casts) do not. A node's ``path`` is its name stack joined by dots,
i.e. the Flax module path (``encoder.Conv_0``) or ``jax.named_scope`` names, otherwise its
name; end-points are chosen by name or path (``output="encoder"`` = the last node inside).
Node axes follow the order in which the node's array holds them; the outputs are nodes whose
axes follow the output array's spatial dimensions, then any size-1 axes of indices selected
away (``x[:, 3]``). The first output leaf is the default end-point; outputs that are pytrees
name their nodes by key (``pool5``, ``0.fine``) when the node has no module path.

**Rules** are keyed by primitive name (``supported_ops()``, ``erf ops jax``); nested jaxprs
(jit, custom_jvp/vjp, remat, closed_call, cond with a constant predicate; a data-dependent
predicate unions the branches) are analysed inside. Equations whose inputs do not depend on
the input are folded: constants are evaluated only where a rule needs a value (the
interpolation matrices of ``jax.image.resize``, gather indices). ``while`` and ``scan`` over
input-dependent data are refused. Primitives without a rule are all listed in one
:class:`UnsupportedOpError`; pass ``rules={"primitive": rule}`` (see ``jax_table``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.extend import core as jex_core
from jax.extend import source_info_util

from ..errors import CaptureError, SpecError, UnsupportedOpError
from ..graph import Graph
from . import jax_moves, jax_rules  # noqa: F401  (registers the rules)
from .jax_builder import Builder, Site
from .jax_table import RULES, Op, Rule
from .jax_values import Const, Data, Value, Weight, plain_dim

SPATIAL = set("HWDTXYZS")
NON_SPATIAL = set("NCBFG_")
LOOPS = ("while", "scan")


def default_layout(ndim: int) -> str:
    """Channels last: NWC, NHWC, NDHWC."""
    layouts = {3: "NWC", 4: "NHWC", 5: "NDHWC"}
    if ndim not in layouts:
        raise SpecError(f"input of rank {ndim}: pass layout= with one letter per dimension "
                        "(N batch, C channels, H/W/D/T spatial), e.g. layout='HW'")
    return layouts[ndim]


def supported_ops() -> list[tuple[str, str]]:
    """(primitive, what its rule does) for every primitive with a rule."""
    rows = [(name, " ".join((fn.__doc__ or fn.__name__).strip().split("\n\n")[0].split()))
            for name, fn in RULES.items()]
    rows.append(("<any primitive on constants>", "folded: evaluated only if a rule needs it"))
    return rows


def capture(target: Any, input_shape: Sequence[int] | None = None, example_inputs: Any = None,
            rules: dict | None = None, *, layout: str | None = None,
            call_kwargs: dict | None = None, **options: Any) -> Graph:
    """The IR of a JAX function, ``(fn, params)`` pair or Flax module (see the module doc)."""
    if options:
        raise SpecError(f"unknown option(s) for the jax frontend: {', '.join(options)}; "
                        "known: layout, call_kwargs")
    x = _example(input_shape, example_inputs)
    fn, params, root = _callable(target, x, call_kwargs or {})
    if example_inputs is None and params is not None:
        x = jax.ShapeDtypeStruct(x.shape, _param_dtype(params, x.dtype))
    layout = layout or default_layout(len(x.shape))
    dims, spatial = _input_dims(layout, tuple(x.shape))
    args = (x,) if params is None else (params, x)
    try:
        closed, out_tree = jax.make_jaxpr(fn, return_shape=True)(*args)
    except Exception as e:  # tracing runs the user's code: report it as a capture failure
        raise CaptureError(f"jax.make_jaxpr failed on input {tuple(x.shape)} "
                           f"({type(e).__name__}: {e})") from e
    graph = Graph.with_input(spatial)
    walker = _Walker(graph, _rule_table(rules), root)
    n_params = len(closed.jaxpr.invars) - 1
    inputs: list[Value] = [Weight(tuple(v.aval.shape)) for v in closed.jaxpr.invars[:n_params]]
    inputs.append(Data(graph.input, dims))
    outs = walker.run_closed(closed, inputs, None)
    walker.raise_unsupported()
    _name_outputs(walker, outs, out_tree)
    return graph


# ---- targets and inputs ------------------------------------------------------------------

def _example(input_shape, example_inputs):
    if example_inputs is not None:
        x = example_inputs
        if isinstance(x, (tuple, list)) and len(x) == 1:
            x = x[0]
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise SpecError("example_inputs for a JAX target must be one array (or "
                            f"jax.ShapeDtypeStruct), got {type(x).__name__}")
        if input_shape is not None and tuple(input_shape) != tuple(x.shape):
            raise SpecError(f"input_shape {list(input_shape)} and example_inputs of shape "
                            f"{list(x.shape)} disagree")
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)
    if input_shape is None:
        raise SpecError("a JAX target needs input_shape (e.g. (1, 224, 224, 3)) or "
                        "example_inputs")
    # the default float dtype: float32, or float64 under jax_enable_x64
    return jax.ShapeDtypeStruct(tuple(int(n) for n in input_shape), jax.numpy.result_type(float))


def _param_dtype(params: Any, default: Any) -> Any:
    """The input dtype that fits the params: their first floating dtype (so float32 weights
    get a float32 input even when jax_enable_x64 makes float64 the default), else default."""
    for leaf in jax.tree_util.tree_leaves(params):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jax.numpy.issubdtype(dtype, jax.numpy.floating):
            return dtype
    return default


def _flax_module(obj: Any) -> bool:
    linen = sys.modules.get("flax.linen")
    return linen is not None and isinstance(obj, linen.Module)


def _callable(target: Any, x, kwargs: dict) -> tuple[Any, Any, str | None]:
    """(fn, params or None, root scope name to strip from name stacks)."""
    if isinstance(target, tuple):
        if len(target) != 2:
            raise SpecError(f"a JAX target tuple must be (fn, params), got {len(target)} items")
        fn, params = target
        if _flax_module(fn):
            module = fn
            return (lambda v, x: module.apply(v, x, **kwargs)), params, type(module).__name__
        if not callable(fn):
            raise SpecError(f"(fn, params): fn is a {type(fn).__name__}, not callable")
        return (lambda p, x: fn(p, x, **kwargs)), params, None
    if _flax_module(target):
        module = target
        if module.scope is not None:
            module, variables = module.unbind()
        else:
            variables = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x, **kwargs),
                                       x)
        return ((lambda v, x: module.apply(v, x, **kwargs)), variables, type(module).__name__)
    if not callable(target):
        raise SpecError(f"cannot analyze a {type(target).__name__} with the jax frontend")
    return (lambda x: target(x, **kwargs)), None, None


def _input_dims(layout: str, shape: tuple[int, ...]):
    if len(layout) != len(shape):
        raise SpecError(f"layout {layout!r} has {len(layout)} letters but the input has "
                        f"{len(shape)} dimensions {list(shape)}")
    bad = [c for c in layout if c.upper() not in SPATIAL | NON_SPATIAL]
    if bad:
        raise SpecError(f"layout {layout!r}: unknown letter(s) {''.join(bad)}; use N/C for "
                        "batch/channels and H, W, D, T (or X, Y, Z, S) for spatial axes")
    dims, spatial = [], []
    for c, n in zip(layout.upper(), shape):
        if c in SPATIAL:
            dims.append(plain_dim(len(spatial), n) if n != 1 else ((len(spatial), 1, 1),))
            spatial.append(n)
        else:
            dims.append(plain_dim(None, n))
    if not spatial:
        raise SpecError(f"layout {layout!r} has no spatial axis (H, W, D, T, ...)")
    return tuple(dims), spatial


def _rule_table(user: dict | None) -> dict[str, Rule]:
    table: dict[str, Rule] = {name: fn for name, fn in RULES.items()}
    for key, rule in (user or {}).items():
        name = key if isinstance(key, str) else getattr(key, "name", None)
        if not isinstance(name, str):
            raise SpecError(f"rules keys are primitive names (or primitives), got {key!r}")
        if rule == "pointwise":
            rule = jax_rules.elementwise
        elif rule == "global":
            rule = _global_rule
        elif not callable(rule):
            raise SpecError(f"rule for {name!r} must be 'pointwise', 'global' or a function "
                            f"op -> outputs, got {rule!r}")
        table[name] = rule
    return table


def _global_rule(op: Op) -> list[Value]:
    """every output reads all of every input"""
    return op.everything()


# ---- walking the jaxpr --------------------------------------------------------------------

class _Walker:
    def __init__(self, graph: Graph, rules: dict[str, Rule], root: str | None):
        self.builder = Builder(graph, origin={graph.input: tuple(range(len(graph.input_shape)))})
        self.rules = rules
        self.root = root
        self.unsupported: dict[str, list] = {}
        self.scopes: list[tuple[str, ...]] = [()]

    def run_closed(self, jaxpr: Any, args: Sequence[Value], op: Op | None) -> list[Value]:
        """Run a (closed or open) jaxpr on values; ``op`` is the calling equation, if any."""
        consts = [Const.of(c) for c in getattr(jaxpr, "consts", ())]
        inner = getattr(jaxpr, "jaxpr", jaxpr)
        outer = self.scopes[-1] if op is None else self._scope(op.eqn)
        self.scopes.append(outer)
        try:
            return self.run(inner, consts, list(args))
        finally:
            self.scopes.pop()

    def run(self, jaxpr: Any, consts: list[Value], args: list[Value]) -> list[Value]:
        env: dict[Any, Value] = {}
        if len(args) != len(jaxpr.invars):
            raise CaptureError(f"nested jaxpr takes {len(jaxpr.invars)} arguments, "
                               f"got {len(args)}")
        env.update(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))

        def read(v: Any) -> Value:
            if isinstance(v, jex_core.Literal):
                return Const.of(v.val)
            return env[v]

        for eqn in jaxpr.eqns:
            outs = self.equation(eqn, [read(v) for v in eqn.invars])
            for var, val in zip(eqn.outvars, outs):
                env[var] = val
        return [read(v) for v in jaxpr.outvars]

    def _scope(self, eqn: Any) -> tuple[str, ...]:
        names = tuple(getattr(s, "name", "") for s in eqn.source_info.name_stack.stack
                      if type(s).__name__ == "Scope")
        return self.scopes[-1] + names

    def _path(self, eqn: Any) -> str:
        scope = list(self._scope(eqn))
        if scope and self.root is not None and scope[0] == self.root:
            scope = scope[1:]
        return ".".join(s for s in scope if s)

    def equation(self, eqn: Any, inputs: list[Value]) -> list[Value]:
        prim = eqn.primitive.name
        if not any(isinstance(v, Data) for v in inputs):
            return _fold(eqn, inputs)
        if all(_empty(v) for v in eqn.outvars):  # zero-size results carry nothing
            return [_zeros(v) for v in eqn.outvars]
        try:
            source = source_info_util.summarize(eqn.source_info)
        except Exception:  # source info is a convenience; never fail on it
            source = ""
        site = Site(prim, self._path(eqn), source)
        op = Op(eqn, inputs, self.builder, site, self)
        rule = self.rules.get(prim)
        if rule is None:
            entry = self.unsupported.setdefault(prim, [0, site])
            entry[0] += 1
            return op.everything()
        try:
            outs = list(rule(op))
        except (CaptureError, UnsupportedOpError, SpecError):
            raise
        except Exception as e:
            raise CaptureError(f"rule {getattr(rule, '__name__', rule)!r} failed on {prim} at "
                               f"{site.path or '?'} ({source}): {type(e).__name__}: {e}") from e
        if len(outs) != len(eqn.outvars):
            raise CaptureError(f"rule for {prim} returned {len(outs)} values for "
                               f"{len(eqn.outvars)} outputs")
        outs = [_zeros(var) if _empty(var) else val for var, val in zip(eqn.outvars, outs)]
        for var, val in zip(eqn.outvars, outs):
            if isinstance(val, Data) and val.shape != tuple(var.aval.shape):
                raise CaptureError(f"rule for {prim} at {source}: output shape {val.shape} "
                                   f"!= {tuple(var.aval.shape)}")
        return outs

    def raise_unsupported(self) -> None:
        if not self.unsupported:
            return
        lines = []
        for prim, (count, site) in sorted(self.unsupported.items()):
            where = site.path or "?"
            note = ("  (a loop over input-dependent data: loops are not unrolled)"
                    if prim in LOOPS else "")
            lines.append(f"  {prim:28s} x{count}  first at {where} ({site.source or '?'})"
                         f"{note}")
        n = len(self.unsupported)
        raise UnsupportedOpError(
            f"{n} primitive{'s' if n > 1 else ''} ha{'ve' if n > 1 else 's'} no receptive-field"
            " rule (jax frontend):\n" + "\n".join(lines)
            + "\nPass rules={'primitive': rule} to analyze() ('pointwise', 'global' or a "
              "function, see analytic.frontends.jax_table), or run `erf ops jax` to list "
              "supported ops.")


def _empty(var: Any) -> bool:
    shape = getattr(var.aval, "shape", ())
    return 0 in tuple(shape)


def _zeros(var: Any) -> Const:
    shape = tuple(var.aval.shape)
    return Const.of(np.zeros(shape, dtype=var.aval.dtype))


def _fold(eqn: Any, inputs: list[Value]) -> list[Value]:
    """Outputs of an equation that does not read the input: constants or weights."""
    shapes = [tuple(getattr(v.aval, "shape", ())) for v in eqn.outvars]
    if any(isinstance(v, Weight) for v in inputs):
        return [Weight(s) for s in shapes]
    bound = eqn.primitive.get_bind_params(eqn.params)
    # older jax returns (subfuns, params), newer only params
    subfuns, params = bound if isinstance(bound, tuple) else ([], bound)
    consts = [v for v in inputs if isinstance(v, Const)]

    def output(i: int) -> Any:
        def fn(*args: Any) -> Any:
            out = eqn.primitive.bind(*subfuns, *args, **params)
            return out[i] if eqn.primitive.multiple_results else out
        return fn

    return [Const(shape, output(i), consts) for i, shape in enumerate(shapes)]


def _name_outputs(walker: _Walker, outs: list[Value], out_tree: Any) -> None:
    graph = walker.builder.graph
    leaves = jax.tree_util.tree_flatten_with_path(out_tree)[0]
    keys = [_key(path) for path, _ in leaves]
    first = None
    for key, val in zip(keys, outs):
        if not isinstance(val, Data):
            continue
        val = _ordered(walker, val)
        node = graph.nodes[val.node]
        if key and node.path == node.name and node.name != graph.input:
            from dataclasses import replace
            graph.nodes[node.name] = replace(node, path=key)
        first = first or val.node
    if first is None:
        raise CaptureError("no output of the function depends on its input")
    graph.output = first


def _ordered(walker: _Walker, x: Data) -> Data:
    """An output as a node whose axes follow the array's spatial dims in order."""
    b = walker.builder
    axes = [x.axis(k) for k in range(x.ndim)] if b.is_simple(x) else None
    spatial = [a for a in axes if a is not None] if axes is not None else None
    if (spatial is not None and spatial == list(range(len(spatial)))
            and x.node != b.graph.input):  # the input itself gets an identity output node
        return x
    site = Site("output", "", "")
    x = b.simple(x, site)
    return b.emit(site, [x], x.shape, [[(k, None) for k in range(x.ndim)]], op="output")


def _key(path: Any) -> str:
    parts = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
    return ".".join(parts)
