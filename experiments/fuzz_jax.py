"""Build a random description (spec dict) as a JAX function, with a gradient oracle.

The function takes ``x`` of shape ``(1, 2, *spatial)`` (layout ``NCW`` / ``NCHW`` /
``NCDHW``) and computes every spec node inside ``jax.named_scope(name)``, so its path is the
node name. Weights are positive float64 (2 channels, as ``fuzz_torch``), values stay positive
and the pointwise op is ``x + tanh(x)``, so no gradient cancels or vanishes. Everything runs in
float64 inside ``jax.enable_x64(True)`` (:attr:`Built.context`): the flag is set for the
duration of the analysis and the oracle only, never for the process.

How each spec op is written in JAX:

- ``conv``: ``lax.conv_general_dilated`` with explicit (asymmetric) padding, rhs dilation and
  ``feature_group_count`` 2 where ``fuzz_torch.groups`` says so; ``conv_transpose``: the same
  with ``lhs_dilation`` = stride and padding ``d*(k-1) - p`` (+ output padding after);
- ``pool``: ``lax.reduce_window`` max with -inf padding (ceil mode as extra right padding);
  the oracle's probe sums over the same windows (0 padding) with a depthwise ones convolution
  (XLA's jitted gradient of a window-dilated ``reduce_window`` sum is wrong on CPU: a window
  that reads only padding passes gradient to the input), as ``mul`` is probed as ``add``;
- ``pad``: ``lax.pad`` (constant, negative = crop), ``jnp.pad`` reflect / edge / wrap;
- ``upsample``: ``jax.image.resize`` where its semantics are the spec's: JAX ``nearest`` is
  half-pixel, i.e. spec ``nearest-exact``; ``linear`` with ``antialias=False`` is spec
  linear/bilinear with ``align_corners=False``. Spec ``nearest`` (``floor(o*n/m)``) and
  ``align_corners=True`` have no ``jax.image.resize`` method: they are written as what they
  are, a gather with the exact integer indices and a product with the exact interpolation
  matrix along each axis;
- ``pixel_shuffle`` / ``pixel_unshuffle``: reshape + transpose (channel order as PyTorch).
  Views make no node in the JAX frontend (the spatial axes ride inside the merged dims until
  an op reads them), so these nodes are not compared by name (``Built.fused``): their users
  and the output are. The same for ``jnp.pad`` by zero amounts and ``jax.image.resize`` to the
  same size, which return their input;
- ``slice``: ``lax.slice``; ``concat``: ``jnp.concatenate`` (channel: then a 1x1 conv);
  ``global``: ``jnp.mean`` over the spatial dims.

Every description the generator makes is expressible, so :func:`inexpressible` says None; it is
the hook the fuzz runner asks before building.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from experiments.fuzz import find_ties, mask_boxes
from experiments.fuzz_torch import CHANNELS, Built, _pads, _per_axis, groups

LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
CHUNK = 8  # cotangents per backward call (XLA CPU miscompiles large batched transposes)


def inexpressible(desc: dict) -> str | None:
    """Why a description cannot be checked exactly through JAX (None: it can). Every spec op
    can be written exactly; one JAX frontend limitation is excluded, and counted in the
    report: a reshape-based ``pixel_unshuffle`` whose output has a 1-pixel axis. Its size-1
    major digit is a new size-1 dimension to the frontend's reshape algebra (it cannot tell
    ``h // f == 1`` from an inserted dimension), so the axis is reduced where the channels are
    mixed, and a later window along that dimension is not applied to it."""
    from analytic.spec import load_spec
    graph = load_spec(desc)
    for n in desc["nodes"]:
        if n["op"] == "pixel_unshuffle" and 1 in graph[n["name"]].shape:
            return "JAX frontend: reshape-based pixel_unshuffle to a 1-pixel axis"
    return None


def x64():
    return jax.enable_x64(True)


def build(desc: dict, seed: int = 0) -> Built:
    """The description as a float64 JAX function with positive weights, and its oracle."""
    from analytic.spec import load_spec
    ndim = len(desc["input"])
    shape = (1, CHANNELS, *desc["input"])
    with x64():
        params = _params(desc, ndim, seed)
        fn = partial(_forward, desc, params, False)
        probe = partial(_forward, desc, params, True)
        example = jax.ShapeDtypeStruct(shape, jnp.float64)
        forward, backward = upsampling_ties(desc)

    def oracle() -> tuple[np.ndarray, np.ndarray]:
        with x64():
            return support_boxes(probe, shape)
    composite = {n["name"] for n in desc["nodes"]
                 if n["op"] == "pad" and n.get("mode", "constant") != "constant"}
    views = {n["name"] for n in desc["nodes"] if n["op"] in ("pixel_shuffle", "pixel_unshuffle")}
    graph = load_spec(desc)
    no_op = {n["name"] for n in desc["nodes"]  # these return their input: no node
             if (n["op"] == "pad" and n.get("mode", "constant") != "constant"
                 and not any(b or a for b, a in _pads(n, ndim)))
             or (n["op"] == "upsample" and _resized(n)
                 and graph[n["name"]].shape == graph[n["inputs"][0]].shape)}
    return Built(fn, shape, oracle, {"layout": LAYOUTS[ndim], "example_inputs": example},
                 views | no_op, forward, backward, context=x64, composite=composite,
                 views=views)


# ---- the function ---------------------------------------------------------------------------


def _params(desc: dict, ndim: int, seed: int) -> dict:
    """Positive weights, per node (uniform in [0.1, 1], as fuzz_torch)."""
    rng = np.random.default_rng(seed)
    C = CHANNELS

    def w(*s: int) -> jnp.ndarray:
        return jnp.asarray(rng.uniform(0.1, 1.0, size=s), dtype=jnp.float64)
    out: dict[str, dict] = {}
    for node in desc["nodes"]:
        op = node["op"]
        if op in ("conv", "conv_transpose"):
            k = _per_axis(node, "kernel", ndim, 1)
            out[node["name"]] = {"w": w(C, C // groups(node), *k), "b": w(C)}
        elif op == "concat" and node.get("axis", "channel") == "channel":
            out[node["name"]] = {"w": w(C, len(node["inputs"]) * C, *[1] * ndim), "b": w(C)}
        elif op in ("pixel_shuffle", "pixel_unshuffle"):
            f = node.get("factor", 2)
            cin, cout = (C, C * f * f) if op == "pixel_shuffle" else (C * f * f, C)
            out[node["name"]] = {"w": w(cout, cin, *[1] * ndim), "b": w(cout)}
    return out


def _forward(desc: dict, params: dict, probe: bool, x: jnp.ndarray) -> jnp.ndarray:
    ndim = len(desc["input"])
    values = {"input": x}
    for node in desc["nodes"]:
        with jax.named_scope(node["name"]):
            values[node["name"]] = _node(node, ndim, params.get(node["name"], {}), probe,
                                         [values[i] for i in node["inputs"]])
    return values[desc["nodes"][-1]["name"]]


def _conv(x, p, ndim: int, stride=None, pad=None, rhs_dil=None, lhs_dil=None, groups=1):
    spatial = LAYOUTS[ndim][2:]
    y = lax.conv_general_dilated(
        x, p["w"], window_strides=stride or (1,) * ndim,
        padding=pad or [(0, 0)] * ndim, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
        dimension_numbers=(LAYOUTS[ndim], "OI" + spatial, LAYOUTS[ndim]),
        feature_group_count=groups, precision=lax.Precision.HIGHEST)
    return y + p["b"].reshape((1, -1) + (1,) * ndim)


def _node(node: dict, ndim: int, p: dict, probe: bool, xs: list) -> jnp.ndarray:
    op = node["op"]
    x = xs[0]
    if op == "conv":
        return _conv(x, p, ndim, tuple(_per_axis(node, "stride", ndim, 1)),
                     [tuple(q) for q in _pads(node, ndim)],
                     tuple(_per_axis(node, "dilation", ndim, 1)), groups=groups(node))
    if op == "conv_transpose":
        k = _per_axis(node, "kernel", ndim, 1)
        s = _per_axis(node, "stride", ndim, 1)
        d = _per_axis(node, "dilation", ndim, 1)
        outpad = _per_axis(node, "output_padding", ndim, 0)
        pads = [(dd * (kk - 1) - b, dd * (kk - 1) - a + op_)
                for kk, dd, (b, a), op_ in zip(k, d, _pads(node, ndim), outpad)]
        return _conv(x, p, ndim, None, pads, tuple(d), tuple(s), groups=groups(node))
    if op == "pool":
        return _pool(node, ndim, x, probe)
    if op == "pad":
        mode = node.get("mode", "constant")
        pads = _pads(node, ndim)
        if mode == "constant":
            return lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + [(b, a, 0)
                                                                          for b, a in pads])
        jmode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        return jnp.pad(x, [(0, 0)] * 2 + [tuple(q) for q in pads], mode=jmode)
    if op == "pointwise":
        return x + jnp.tanh(x)
    if op == "add" or (op == "mul" and probe):
        return sum(xs[1:], xs[0])
    if op == "mul":
        out = xs[0]
        for y in xs[1:]:
            out = out * y
        return out
    if op == "concat":
        axis = node.get("axis", "channel")
        if axis == "channel":
            return _conv(jnp.concatenate(xs, axis=1), p, ndim)
        return jnp.concatenate(xs, axis=2 + axis)
    if op == "upsample":
        return _upsample(node, ndim, x)
    if op == "pixel_shuffle":
        f = node.get("factor", 2)
        y = _conv(x, p, ndim)  # (1, C*f*f, H, W)
        n, c, h, w = y.shape
        y = y.reshape(n, c // (f * f), f, f, h, w).transpose(0, 1, 4, 2, 5, 3)
        return y.reshape(n, c // (f * f), h * f, w * f)
    if op == "pixel_unshuffle":
        f = node.get("factor", 2)
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // f, f, w // f, f).transpose(0, 1, 3, 5, 2, 4)
        return _conv(y.reshape(n, c * f * f, h // f, w // f), p, ndim)
    if op == "slice":
        start = _per_axis(node, "start", ndim, 0)
        step = _per_axis(node, "step", ndim, 1)
        return lax.slice(x, (0, 0, *start), x.shape, (1, 1, *step))
    if op == "global":
        return jnp.mean(x, axis=tuple(range(2, 2 + ndim)), keepdims=True)
    raise ValueError(f"fuzz: no JAX builder for op {op!r}")


def _pool(node: dict, ndim: int, x: jnp.ndarray, probe: bool) -> jnp.ndarray:
    from analytic.geometry import Window
    k = _per_axis(node, "kernel", ndim, 1)
    s = _per_axis(node, "stride", ndim, 1)
    d = _per_axis(node, "dilation", ndim, 1)
    ceil = node.get("ceil_mode", False)
    pads = []
    for n, kk, ss, dd, (b, a) in zip(x.shape[2:], k, s, d, _pads(node, ndim)):
        out = Window(kernel=kk, stride=ss, dilation=dd, pad=(b, a)).out_size(n, ceil)
        pads.append((b, max(a, (out - 1) * ss + dd * (kk - 1) + 1 - n - b)))
    if probe:  # a sum over the same windows, as a depthwise convolution with a ones kernel:
        # XLA's jitted gradient of a window-dilated reduce_window sum is wrong on CPU (a window
        # that reads only padding passes gradient to the input), the convolution's is not
        ones = jnp.ones((x.shape[1], 1, *k), x.dtype)
        y = _conv(x, {"w": ones, "b": jnp.zeros(x.shape[1], x.dtype)}, ndim, tuple(s), pads,
                  tuple(d), groups=x.shape[1])
    else:
        y = lax.reduce_window(x, jnp.asarray(-jnp.inf, x.dtype), lax.max, (1, 1, *k),
                              (1, 1, *s), [(0, 0), (0, 0), *pads], window_dilation=(1, 1, *d))
    # ceil mode: the extra right padding may allow one window too many; keep the spec's count
    outs = [Window(kernel=kk, stride=ss, dilation=dd, pad=tuple(q)).out_size(n, ceil)
            for n, kk, ss, dd, q in zip(x.shape[2:], k, s, d, _pads(node, ndim))]
    return y[(slice(None), slice(None), *[slice(0, m) for m in outs])]


def _resized(node: dict) -> bool:
    """Whether the node is written with ``jax.image.resize``."""
    mode = node.get("mode", "nearest")
    return mode == "nearest-exact" or (mode in ("linear", "bilinear")
                                       and not node.get("align_corners", False))


def _upsample(node: dict, ndim: int, x: jnp.ndarray) -> jnp.ndarray:
    mode = node.get("mode", "nearest")
    size = _per_axis(node, "size", ndim, 1)
    if _resized(node):
        method = "nearest" if mode == "nearest-exact" else "linear"
        return jax.image.resize(x, (*x.shape[:2], *size), method, antialias=False)
    for a, m in enumerate(size):  # exact maps, one axis at a time
        n = x.shape[2 + a]
        if mode == "nearest":
            x = jnp.take(x, jnp.asarray((np.arange(m) * n) // m), axis=2 + a)
        else:
            x = jnp.moveaxis(jnp.tensordot(x, jnp.asarray(_align_corners_matrix(n, m)),
                                           axes=([2 + a], [0])), -1, 2 + a)
    return x


def _align_corners_matrix(n: int, m: int) -> np.ndarray:
    """(n, m) linear interpolation weights with align_corners=True, from exact fractions (a
    weight is 0 exactly where the exact source position falls on a pixel)."""
    mat = np.zeros((n, m))
    for o in range(m):
        src = Fraction(o * (n - 1), max(m - 1, 1))
        i0 = int(src)
        frac = src - i0
        mat[i0, o] += float(1 - frac)
        if frac:
            mat[min(i0 + 1, n - 1), o] += float(frac)
    return mat


# ---- ties and the oracle ----------------------------------------------------------------


def upsampling_ties(desc: dict) -> tuple[dict[str, str], dict[str, str]]:
    """As ``fuzz_torch.upsampling_ties``, for the JAX function of each upsample node (float64,
    at the node's real shape): forward reads vs the exact definition, gradient vs forward."""
    ndim = len(desc["input"])
    return find_ties(desc, lambda node, ir: partial(_upsample, node, ndim), _axis_reads, "jax")


def _axis_reads(op: Callable, in_shape, out_shape, a: int):
    n, m = in_shape[a], out_shape[a]

    def slabs(k: int, shape) -> np.ndarray:
        idx = np.arange(k).reshape((k, 1) + (1,) * len(shape))
        pos = np.arange(k).reshape((1, 1) + tuple(k if j == a else 1 for j in range(len(shape))))
        return np.broadcast_to(idx == pos, (k, CHANNELS) + tuple(shape)).astype(np.float64)

    def nonzero(t) -> np.ndarray:
        t = np.asarray(t) != 0
        return t.sum(axis=tuple(j + 2 for j in range(t.ndim - 2) if j != a) + (1,))
    f = nonzero(op(jnp.asarray(slabs(n, in_shape))))  # (input i, output o)
    x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, (1, CHANNELS, *in_shape)))
    _, vjp = jax.vjp(op, x)
    b = nonzero(np.stack([np.asarray(vjp(jnp.asarray(ct[None]))[0][0])
                          for ct in slabs(m, tuple(out_shape))]))  # (output o, input i)
    return ([np.flatnonzero(f[:, o]).tolist() for o in range(m)],
            [np.flatnonzero(b[o]).tolist() for o in range(m)])


def support_boxes(fn: Callable, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes of nonzero input gradient of every output position (channels summed),
    shape (D, *out_spatial); empty positions lo > hi. One-hot cotangents (all channels of one
    position), pulled back in jitted, vmapped chunks of ``CHUNK``."""
    x = jnp.asarray(np.random.default_rng(1).uniform(0.5, 1.5, size=shape))
    y, vjp = jax.vjp(fn, x)
    out_spatial = tuple(y.shape[2:])
    n_out = int(np.prod(out_spatial))
    eye = np.eye(n_out).reshape(n_out, 1, 1, *out_spatial)
    cts = np.broadcast_to(eye, (n_out, *y.shape))
    cts = np.concatenate([cts, np.zeros((-n_out % CHUNK, *y.shape))])
    backward = jax.jit(jax.vmap(lambda ct: vjp(ct)[0]))
    grads = np.concatenate([np.asarray(backward(jnp.asarray(cts[i:i + CHUNK])))
                            for i in range(0, len(cts), CHUNK)])[:n_out]
    mask = np.abs(grads).sum(axis=(1, 2)) > 0  # (n_out, *in_spatial)
    return mask_boxes(mask, tuple(out_spatial))
