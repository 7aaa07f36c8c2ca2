"""Gradient-support oracle for JAX functions, independent of ``analytic``.

For an output position p, the input positions that can influence it are where the gradient of
the output at p (a one-hot cotangent at p, every batch entry and channel) is nonzero. To make
"can influence" and "has nonzero gradient" the same thing:

- float64 (``jax_enable_x64`` is set when this module is imported: a global switch, so every
  test module that imports the oracle runs in float64);
- positive inputs (uniform in [0.5, 1.5]) and positive parameters (:func:`positive`), so sums of
  products never cancel;
- selections are replaced by sums before differentiating: the function's jaxpr is
  re-interpreted with ``max``/``min`` (elementwise, ``reduce_*``, ``reduce_window_*``,
  ``cummax``/``cummin``) computed as additions, so max pooling and ReLU pass gradient to every
  input they read instead of only the argmax.

:func:`support_boxes` returns, per requested position, the bounding box of the nonzero input
gradient per input spatial axis (inclusive), or None where the gradient is zero everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jex

jax.config.update("jax_enable_x64", True)

SPATIAL = set("HWDTXYZS")
CHUNK = 8  # cotangents per backward call


def positive(params, seed: int = 0, scale_by_fan_in: bool = True):
    """The same pytree with every leaf uniform in [0.5, 1.5] (divided by its fan-in)."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(seed)
    out = []
    for leaf in leaves:
        shape = np.shape(leaf)
        v = rng.uniform(0.5, 1.5, size=shape)
        if scale_by_fan_in and len(shape) >= 2:
            v = v / (np.prod(shape) / shape[-1])
        out.append(jnp.asarray(v, dtype=jnp.float64))
    return jax.tree_util.tree_unflatten(tree, out)


def _sum_instead(eqn, args, dep):
    """The selection-free replacement of an input-dependent equation, or None to keep it."""
    name, p = eqn.primitive.name, eqn.params
    if name in ("max", "min"):  # relu(x) = max(x, 0) -> x; max of two inputs -> their sum
        kept = [a for a, d in zip(args, dep) if d]
        return [kept[0] + kept[1] if len(kept) == 2 else jnp.broadcast_to(
            kept[0], jnp.broadcast_shapes(*(jnp.shape(a) for a in args)))]
    if name == "clamp":
        return [sum(a for a, d in zip(args, dep) if d)]
    if name == "select_n" and dep[0]:  # a data-dependent choice: take every case
        return [sum(args[1:])]
    if name in ("reduce_max", "reduce_min"):
        return [jnp.sum(args[0], axis=tuple(p["axes"]))]
    if name in ("reduce_window_max", "reduce_window_min"):
        return [lax.reduce_window(args[0], np.zeros((), args[0].dtype), lax.add,
                                  p["window_dimensions"], p["window_strides"], p["padding"],
                                  p["base_dilation"], p["window_dilation"])]
    if name == "reduce_window":  # a generic computation (no reverse mode): sum all operands
        n = len(args) // 2
        total = sum(lax.reduce_window(a, np.zeros((), a.dtype), lax.add, p["window_dimensions"],
                                      p["window_strides"], p["padding"], p["base_dilation"],
                                      p["window_dilation"]) for a in args[:n])
        return [total] * n
    if name in ("cummax", "cummin"):
        return [lax.cumsum(args[0], axis=p["axis"], reverse=p["reverse"])]
    return None


CALLS = ("jit", "closed_call", "custom_jvp_call", "custom_vjp_call", "remat2", "checkpoint")


def _interpret(jaxpr, consts, args, deps):
    """Evaluate a jaxpr; equations that depend on the input (``deps``) lose selections."""
    env, dep = {}, {}

    def read(v):
        return v.val if isinstance(v, jex.Literal) else env[v]

    def depends(v):
        return not isinstance(v, jex.Literal) and dep.get(v, False)

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    dep.update(zip(jaxpr.invars, deps))
    for eqn in jaxpr.eqns:
        vals = [read(v) for v in eqn.invars]
        flags = [depends(v) for v in eqn.invars]
        p = eqn.params
        sub = p.get("jaxpr", p.get("call_jaxpr"))
        outs = None
        if eqn.primitive.name in CALLS and sub is not None:
            outs = _interpret(getattr(sub, "jaxpr", sub), list(getattr(sub, "consts", ())),
                              vals, flags)
        elif eqn.primitive.name == "cond" and isinstance(eqn.invars[0], jex.Literal):
            branch = p["branches"][int(eqn.invars[0].val)]
            outs = _interpret(branch.jaxpr, list(branch.consts), vals[1:], flags[1:])
        elif any(flags):
            outs = _sum_instead(eqn, vals, flags)
        if outs is None:
            bound = eqn.primitive.get_bind_params(p)
            subfuns, params = bound if isinstance(bound, tuple) else ([], bound)
            out = eqn.primitive.bind(*subfuns, *vals, **params)
            outs = out if eqn.primitive.multiple_results else [out]
        for var, val in zip(eqn.outvars, outs):
            env[var] = val
            dep[var] = any(flags)
    return [read(v) for v in jaxpr.outvars]


def without_selections(fn, x):
    """``fn`` re-interpreted with max/min replaced by sums (see the module doc)."""
    closed = jax.make_jaxpr(fn)(x)
    return lambda x: _interpret(closed.jaxpr, list(closed.consts), [x], [True])[0]


def spatial_dims(layout: str) -> list[int]:
    return [i for i, c in enumerate(layout.upper()) if c in SPATIAL]


def support_boxes(fn, x_shape: Sequence[int], positions: Sequence[Sequence[int]] | None = None,
                  layout: str = "NHWC", out_layout: str | None = None, params=None,
                  selections: str = "sum", seed: int = 0):
    """Per output position (indices over the output's spatial dims), the bounding box
    ``[(lo, hi), ...]`` per input spatial axis of the nonzero gradient, or None.

    ``fn(x)``, or ``fn(params, x)`` when ``params`` is given. ``positions`` default to all
    output positions. ``out_layout`` names the output's dims (default: ``layout`` when the
    ranks agree, else no spatial dims). ``selections="keep"`` differentiates max as is.
    Returns ``(positions, boxes)``.
    """
    f = fn if params is None else (lambda x: fn(params, x))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(0.5, 1.5, size=tuple(x_shape)), dtype=jnp.float64)
    if selections == "sum":
        f = without_selections(f, x)
    y, vjp = jax.vjp(jax.jit(f), x)
    if out_layout is None:
        out_layout = layout if len(layout) == y.ndim else "N" * y.ndim
    out_sp = spatial_dims(out_layout)
    in_sp = spatial_dims(layout)
    if positions is None:
        positions = list(np.ndindex(*[y.shape[d] for d in out_sp]))
    positions = [tuple(int(i) for i in p) for p in positions]
    cts = np.zeros((len(positions), *y.shape), dtype=np.float64)
    for k, pos in enumerate(positions):
        index = [slice(None)] * y.ndim
        for d, i in zip(out_sp, pos):
            index[d] = i
        cts[(k, *index)] = 1.0
    # cotangents in fixed chunks of CHUNK: XLA on CPU miscompiles some batched transposes
    # (pad with interior holes feeding a strided reduce_window, i.e. the gradient of a
    # base-dilated pooling) for large batches; small chunks also keep one compiled shape
    backward = jax.jit(jax.vmap(lambda ct: vjp(ct)[0]))
    padded = np.concatenate([cts, np.zeros((-len(cts) % CHUNK, *y.shape))])
    grads = np.concatenate([np.asarray(backward(jnp.asarray(padded[i:i + CHUNK])))
                            for i in range(0, len(padded), CHUNK)])[:len(cts)]
    other = tuple(1 + d for d in range(len(x_shape)) if d not in in_sp)
    support = np.abs(grads).sum(axis=other) > 0 if other else np.abs(grads) > 0
    boxes = []
    for s in support:
        if not s.any():
            boxes.append(None)
            continue
        box = []
        for a in range(s.ndim):
            hit = np.flatnonzero(s.any(axis=tuple(b for b in range(s.ndim) if b != a)))
            box.append((int(hit[0]), int(hit[-1])))
        boxes.append(box)
    return positions, boxes
