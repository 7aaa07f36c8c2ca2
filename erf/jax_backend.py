"""JAX backend: ``jax.vjp`` once per sample under ``jit``, ``vmap`` over impulse cotangents.

Models: a callable ``fn(x)``, a pair ``(fn, params)`` called as ``fn(params, x)``, or a pair
``(flax.linen.Module, variables)`` called as ``module.apply(variables, x)``. Weight
re-initialisation (``init``) needs a pair: it maps the params pytree to a new one.

Float64 (used by :func:`erf.check`) is switched on with the ``jax.enable_x64`` context
manager around the measurement only; the process-wide setting is left as it is.
End-points: the function's output; for Flax linen models any submodule's output, by its
module path (the JAX frontend's node ``path``, e.g. ``"encoder.Conv_0"``), captured with
``capture_intermediates`` (the last call of a module called several times); for plain
functions the last node of a ``jax.named_scope`` (the frontend's node paths: scope names
joined by dots), by evaluating the function's jaxpr truncated at that equation's output
(layout-only equations such as transposes and casts, which the frontend makes no node of,
are skipped; scopes inside nested jitted calls are not searched).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .impulses import (
    Layout,
    MeasureError,
    cpu_budget,
    impulse_index,
    infer_layout,
    reduce_axes,
    stacked_cotangent,
    unstacked_layout,
)

FRAMEWORK = "jax"


def split_model(model: Any) -> tuple[Callable, Any]:
    """(call(params, x), params) from a callable, a ``(fn, params)`` pair or a Flax module."""
    pair = _linen_pair(model)
    if pair is not None:
        return pair[0].apply, pair[1]
    if isinstance(model, tuple):
        if len(model) != 2 or not callable(model[0]):
            raise MeasureError("a JAX model is a callable fn(x) or a pair (fn, params) called "
                               f"as fn(params, x); got a tuple of {len(model)}")
        return model
    if not callable(model):
        raise MeasureError(f"cannot measure a {type(model).__name__}: pass a callable or a "
                           "(fn, params) pair")
    return (lambda p, x: model(x)), None


def _is_linen(fn: Any) -> bool:
    linen = sys.modules.get("flax.linen")
    return linen is not None and isinstance(fn, linen.Module)


def _linen_pair(model: Any) -> tuple[Any, Any] | None:
    """(module, variables) of a Flax linen model (bound, or a pair); None for anything else."""
    if _is_linen(model):
        if getattr(model, "scope", None) is None:
            raise MeasureError("an unbound Flax module has no weights to measure: pass "
                               "(module, variables) or module.bind(variables)")
        return model.unbind()
    if isinstance(model, tuple) and len(model) == 2 and _is_linen(model[0]):
        return model
    return None


def _intermediates(module: Any, params: Any, x: Any) -> dict:
    _, state = module.apply(params, x, capture_intermediates=True, mutable=["intermediates"])
    return state["intermediates"]


def _submodule(tree: Any, keys: tuple[str, ...]) -> Any:
    """The captured ``__call__`` outputs of submodule ``keys``, or None."""
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree.get("__call__") if isinstance(tree, dict) else None


def _capture(module: Any, keys: tuple[str, ...]) -> Callable:
    """call(params, x) returning the output of submodule ``keys`` (its last call)."""
    return lambda params, x: _submodule(_intermediates(module, params, x), keys)[-1]


def resolve_device(device: str) -> Any:
    kind = {"cuda": "gpu"}.get(str(device).split(":")[0], str(device).split(":")[0])
    try:
        devices = jax.devices(kind)
    except RuntimeError:
        devices = []
    if not devices:
        raise MeasureError(f"device={device!r} was requested but JAX {jax.__version__} has no "
                           f"{kind} backend (devices: {jax.devices()}); use device='cpu'")
    index = int(str(device).split(":")[1]) if ":" in str(device) else 0
    return devices[index]


LAYOUT_PRIMITIVES = frozenset({"transpose", "reshape", "squeeze", "expand_dims",
                               "broadcast_in_dim", "convert_element_type", "copy", "copy_p"})


def resolve_endpoint(model: Any, analysis: Any, node: str, output: str | None,
                     input_shape: Sequence[int]) -> tuple[str, Any] | None:
    """None for the function's output; ("flax", module path tuple) or ("scope", path)."""
    graph = analysis.graph
    if node == (graph.output or list(graph.nodes)[-1]):
        return None
    path = graph[node].path
    x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
    pair = _linen_pair(model)
    if pair is not None:
        tree = jax.eval_shape(partial(_intermediates, pair[0]), pair[1], x)
        for name in (output, path):
            if name and _submodule(tree, tuple(name.split("."))) is not None:
                return ("flax", tuple(name.split(".")))
        raise MeasureError(f"end-point {output or node!r} (node {node!r}, path {path!r}) is "
                           "not the output of a Flax submodule; choose a module path (e.g. "
                           "'encoder')")
    if path and path != node and graph.resolve(path) == node:
        call, params = split_model(model)
        if _scope_target(jax.make_jaxpr(call)(params, x).jaxpr, path) is not None:
            return ("scope", path)
    raise MeasureError(
        f"end-point {output or node!r} (node {node!r}, path {path!r}): a plain JAX function "
        "is measured at its output or at the last node of a jax.named_scope (a path whose "
        "last node this is); wrap the computation in a named scope, or return the "
        "intermediate from a wrapper function")


def _scope_target(jaxpr: Any, path: str) -> Any:
    """The output variable of the last input-dependent, non-layout equation in scope
    ``path`` (or a scope inside it), or None."""
    from jax.extend.core import Var

    dependent = {jaxpr.invars[-1]}
    target = None
    for eqn in jaxpr.eqns:
        if not any(isinstance(v, Var) and v in dependent for v in eqn.invars):
            continue
        dependent.update(eqn.outvars)
        names = [getattr(sc, "name", "") for sc in eqn.source_info.name_stack.stack
                 if type(sc).__name__ == "Scope"]
        scope = ".".join(n for n in names if n)
        if eqn.primitive.name not in LAYOUT_PRIMITIVES and (scope == path or
                                                           scope.startswith(path + ".")):
            target = eqn.outvars[0]
    return target


def _truncate(call: Callable, path: str) -> Callable:
    """call(params, x) returning the value at the end of scope ``path`` (see the module doc);
    the jaxpr is traced at the dtypes of the first call."""
    from jax.extend.core import ClosedJaxpr, jaxpr_as_fun

    cache: dict = {}

    def truncated(params, x):
        key = tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves((params, x)))
        if key not in cache:
            closed = jax.make_jaxpr(call)(params, x)
            target = _scope_target(closed.jaxpr, path)
            jaxpr = closed.jaxpr.replace(outvars=[target])
            cache[key] = jaxpr_as_fun(ClosedJaxpr(jaxpr, closed.consts))
        return cache[key](*jax.tree.leaves((params, x)))[0]
    return truncated


# Jitted functions shared by every measurement of the same function: jax.jit compiles once per
# function object and shapes, so a new wrapper per call would recompile (a second per call).
_JITTED: dict = {}


def _cached(make: Callable, *key: Any) -> Any:
    """``make(*key)``, built once per key (once per call if the key cannot be hashed)."""
    try:
        hash(key)
    except TypeError:
        return make(*key)
    if (make, *key) not in _JITTED:
        if len(_JITTED) > 512:  # new functions every call: do not grow without bound
            _JITTED.clear()
        _JITTED[(make, *key)] = make(*key)
    return _JITTED[(make, *key)]


def _jit_forward(call: Callable) -> Callable:
    return jax.jit(lambda p, x: jax.vjp(partial(call, p), x))


def _jit_cotangent(shape: tuple[int, ...], axes: tuple[int, ...], dtype: str) -> Callable:
    """Rows of one-hot cotangents built on the device from impulse indices (row, *position;
    the spatial axes moved after the row axis, see :func:`erf.impulses.impulse_index`)."""
    moved = (tuple(1 + a for a in axes), tuple(range(1, 1 + len(axes))))

    def make(index):
        view = jnp.moveaxis(jnp.zeros(shape, dtype), *moved)
        view = view.at[tuple(index)].set(1, mode="drop")
        return jnp.moveaxis(view, moved[1], moved[0])
    return jax.jit(make)


def _reduce(g: Any, channels: tuple[int, ...], batch: int | None, variants: tuple[str, ...]):
    out = []
    for v in variants:
        t = jnp.abs(g) if v == "abs" else jnp.square(g) if v == "squared" else g
        if channels:
            t = t.sum(axis=channels)
        if batch is not None:
            t = t.mean(axis=batch)
        out.append(t)
    return tuple(out)


def _jit_backward(layout: Layout, variants: tuple[str, ...]) -> Callable:
    """vmap of a forward's vjp over rows of cotangents, reduced per variant."""
    channels, batch = reduce_axes(layout)
    return jax.jit(lambda vjp, cot: _reduce(jax.vmap(vjp)(cot)[0], channels, batch, variants))


def _jit_crop(call: Callable, layout: Layout, variants: tuple[str, ...], rows: int,
              per_crop: int) -> Callable:
    """Forward and backward of crops stacked along the batch axis, reduced per crop."""
    one, order = unstacked_layout(layout)
    channels, batch = reduce_axes(one)

    def run(params, x, cot):
        _, vjp = jax.vjp(partial(call, params), x)
        g = jnp.transpose(vjp(cot)[0], order)
        return _reduce(g.reshape(rows, per_crop, *g.shape[1:]), channels, batch, variants)
    return jax.jit(run)


def _float_dtype(params: Any, dtype: Any) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(getattr(leaf, "dtype", np.int32), jnp.floating):
            return np.dtype(leaf.dtype)
    return np.dtype(np.float32)


class JaxBackend:
    """Runs impulses through a JAX function (see the module docstring)."""

    framework = FRAMEWORK

    def __init__(self, model: Any, *, input_shape: Sequence[int], layout: Layout,
                 node_shape: Sequence[int], endpoint: Any = None, device: str = "cpu",
                 dtype: Any = None, init: Any = None, allow_train_mode: bool = False):
        self.call, params = split_model(model)
        if endpoint is not None and endpoint[0] == "flax":
            self.call = _cached(_capture, _linen_pair(model)[0], endpoint[1])
        elif endpoint is not None:
            self.call = _cached(_truncate, self.call, endpoint[1])
        if init is not None and params is None:
            raise MeasureError("init= re-initialises the params of a (fn, params) pair; this "
                               "model is a bare function with no params to re-draw")
        self.device = resolve_device(device)
        self.np_dtype = _float_dtype(params, dtype)
        self.init = init
        self.input_shape = tuple(int(n) for n in input_shape)
        self.layout = layout
        self.node_shape = tuple(node_shape)
        self.batched: bool | str = True
        with self.context():
            self.params = None if params is None else jax.tree.map(self._cast, params)
        self._forward = _cached(_jit_forward, self.call)
        self._rows = 0
        self._crop_rows: dict = {}
        self._crop_out: dict = {}  # crop stack shape -> end-point shape and dtype
        self._sample_params = self.params

    @property
    def dtype_name(self) -> str:
        return self.np_dtype.name

    @property
    def on_cpu(self) -> bool:
        return self.device.platform == "cpu"

    def memory_budget(self) -> int:
        """Default bytes for one chunk of impulses (see :func:`erf.impulses.cpu_budget`)."""
        stats = self.device.memory_stats() if self.device.platform == "gpu" else None
        if stats and "bytes_limit" in stats:
            return int((stats["bytes_limit"] - stats.get("bytes_in_use", 0)) // 2)
        return cpu_budget()

    def _cast(self, a: Any) -> Any:
        if jnp.issubdtype(getattr(a, "dtype", np.int32), jnp.floating):
            return jnp.asarray(a, self.np_dtype)
        return a

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """float64 (when asked) and the device, for everything this backend runs."""
        with contextlib.ExitStack() as stack:
            if self.np_dtype == np.float64:
                stack.enter_context(jax.enable_x64(True))
            stack.enter_context(jax.default_device(self.device))
            yield

    def free_memory(self) -> None:
        """After running out of memory: forget the padded chunk sizes (smaller ones follow)."""
        self._rows = 0
        self._crop_rows.clear()

    def begin_sample(self, init_seed: int | None) -> None:
        """Re-draw the params for a new sample (when ``init`` is given)."""
        self._sample_params = self.params
        if self.init is not None and init_seed is not None:
            self._sample_params = jax.tree.map(self._cast, self.init(self.params, init_seed))

    def start(self, x: np.ndarray) -> JaxPass:
        """One forward pass on input ``x`` with the sample's params."""
        params = self._sample_params
        xj = jnp.asarray(np.asarray(x, self.np_dtype))
        try:
            y, vjp = self._forward(params, xj)
        except TypeError as e:
            hint = (" A bare function's closed-over arrays are not cast: pass (fn, params) to "
                    "measure in float64." if self.params is None else "")
            raise MeasureError(f"the forward pass failed on a {self.np_dtype.name} input of "
                               f"shape {list(xj.shape)} ({e}).{hint}") from e
        if not isinstance(y, jax.Array):
            raise MeasureError(f"the function returns a {type(y).__name__}, not an array; "
                               "wrap it to return the end-point array")
        out_layout = infer_layout(tuple(y.shape), self.node_shape, self.layout.channels_last,
                                  self.layout.batch is not None, what="function output")
        residual = max((leaf.nbytes for leaf in jax.tree.leaves(vjp)
                        if hasattr(leaf, "nbytes")), default=0)
        per = 6 * residual + 2 * xj.nbytes + y.nbytes
        return JaxPass(self, y, vjp, out_layout, per)

    def backward_fn(self, variants: tuple[str, ...]) -> Callable:
        return _cached(_jit_backward, self.layout, variants)

    def crop_backward(self, crops: np.ndarray, inner: np.ndarray, node_shape: Sequence[int],
                      variants: Sequence[str]) -> tuple[dict, int]:
        """Per-crop reduced maps (k, *crop_spatial) of crops (k, *crop_input_shape) stacked
        along the batch axis, crop j's impulse at ``inner[j]`` of the end-point (whose shape at
        this crop size is ``node_shape``); and the estimated working set per crop in bytes.
        Chunks are padded to the largest seen for this crop shape (one compilation each)."""
        layout, k = self.layout, len(crops)
        rows = self._crop_rows[crops.shape[1:]] = max(self._crop_rows.get(crops.shape[1:], 0), k)
        if rows > k:
            crops = np.concatenate([crops, np.repeat(crops[:1], rows - k, axis=0)])
            inner = np.concatenate([inner, np.repeat(inner[:1], rows - k, axis=0)])
        per_crop = crops.shape[1 + layout.batch]
        x = jnp.asarray(np.concatenate(list(crops), axis=layout.batch), self.np_dtype)
        params = self._sample_params
        if x.shape not in self._crop_out:  # tracing the function once per crop stack shape
            self._crop_out[x.shape] = jax.eval_shape(self.call, params, x)
        y = self._crop_out[x.shape]
        out_layout = infer_layout(tuple(y.shape), node_shape, layout.channels_last, True,
                                  what="function output on crops")
        cot = jnp.asarray(stacked_cotangent(y.shape, out_layout, inner, per_crop), y.dtype)
        maps = _cached(_jit_crop, self.call, self.layout, tuple(variants), rows, per_crop)(
            params, x, cot)
        per = (8 * x.nbytes + cot.nbytes) // rows  # no activations measured: ~ a few inputs
        return {v: np.asarray(m[:k], np.float64) for v, m in zip(variants, maps)}, per

class JaxPass:
    """The forward pass of one sample; :meth:`backward` runs chunks of impulse groups."""

    def __init__(self, backend: JaxBackend, y: Any, vjp: Any, out_layout: Layout,
                 bytes_per_cotangent: int):
        self.backend, self.y, self.vjp, self.out_layout = backend, y, vjp, out_layout
        self.bytes_per_cotangent = bytes_per_cotangent

    def backward(self, groups: Sequence[np.ndarray], variants: Sequence[str]) -> dict:
        b = self.backend
        b._rows = max(b._rows, len(groups))  # pad to one size: one compilation per chunk size
        index = impulse_index(self.out_layout, groups)
        n = 1 << max(len(index[0]) - 1, 0).bit_length()  # padded: few compilations
        index = np.stack([np.pad(i, (0, n - len(i)), constant_values=b._rows if j == 0 else 0)
                          for j, i in enumerate(index)])  # row b._rows: dropped (no impulse)
        make = _cached(_jit_cotangent, (b._rows, *self.y.shape), self.out_layout.axes,
                       self.y.dtype.name)
        run = b.backward_fn(tuple(variants))
        maps = run(self.vjp, make(jnp.asarray(index)))
        return {v: np.asarray(m[:len(groups)], np.float64) for v, m in zip(variants, maps)}
