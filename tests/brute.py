"""An independent oracle for spec graphs: run every op as a linear map on a batch of impulses.

Each spec op is implemented here in plain numpy (np.pad, slicing, np.repeat, scatter-adds)
with nonnegative weights, so nothing cancels: the Jacobian's nonzero pattern is the exact
dependency set. It shares no code with ``analytic`` beyond reading the spec dict.
"""

from __future__ import annotations

import numpy as np


def _per_axis(v, ndim, default):
    v = default if v is None else v
    return list(v) if isinstance(v, list) else [v] * ndim


def _pads(node, ndim):
    v = node.get("pad", 0)
    v = v if isinstance(v, list) else [v] * ndim
    return [tuple(p) if isinstance(p, list) else (p, p) for p in v]


def _axis_op(x, axis, fn):
    """Apply a linear 1-D map along spatial axis ``axis`` of x (batch first)."""
    return np.apply_along_axis(fn, 1 + axis, x)


def _window_sum(v, k, s, d, before, after, ceil_mode=False):
    n = len(v)
    span = d * (k - 1) + 1
    extent = n + before + after - span
    out = extent // s + 1
    if ceil_mode:
        out = -(-extent // s) + 1
        if (out - 1) * s >= n + before:
            out -= 1
    res = np.zeros(out)
    for i in range(out):
        for m in range(k):
            j = i * s - before + m * d
            if 0 <= j < n:
                res[i] += v[j]
    return res


def _transposed(v, k, s, d, before, after, outpad):
    n = len(v)
    size = (n - 1) * s - before - after + d * (k - 1) + 1 + outpad
    res = np.zeros(size)
    for i in range(n):
        for m in range(k):
            o = i * s - before + m * d
            if 0 <= o < size:
                res[o] += v[i]
    return res


def _pad(v, before, after, mode):
    if before < 0:
        v, before = v[-before:], 0
    if after < 0:
        v, after = v[: len(v) + after], 0
    numpy_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}[mode]
    return np.pad(v, (before, after), mode=numpy_mode)


def run(spec: dict) -> dict[str, np.ndarray]:
    """Every node's value on the batch of all input impulses: shape (n_inputs, *node_shape)."""
    shape = tuple(spec["input"])
    ndim = len(shape)
    size = int(np.prod(shape))
    values = {"input": np.eye(size).reshape((size, *shape))}
    pending = list(spec["nodes"])
    while pending:
        node = next(n for n in pending if all(i in values for i in n["inputs"]))
        pending.remove(node)
        xs = [values[i] for i in node["inputs"]]
        x = xs[0]
        op = node["op"]
        if op in ("conv", "pool"):
            k = _per_axis(node.get("kernel"), ndim, 1)
            s = _per_axis(node.get("stride"), ndim, 1)
            d = _per_axis(node.get("dilation"), ndim, 1)
            for a, (b, e) in enumerate(_pads(node, ndim)):
                x = _axis_op(x, a, lambda v, a=a, b=b, e=e: _window_sum(
                    v, k[a], s[a], d[a], b, e, node.get("ceil_mode", False)))
        elif op == "pad":
            for a, (b, e) in enumerate(_pads(node, ndim)):
                x = _axis_op(x, a, lambda v, b=b, e=e: _pad(v, b, e, node.get("mode", "constant")))
        elif op in ("pointwise",):
            x = 2.0 * x + 0.0
        elif op in ("add", "mul"):
            x = sum(xs)  # the dependency pattern of a product of positive maps is the union
        elif op == "concat":
            axis = node.get("axis", "channel")
            x = sum(xs) if axis == "channel" else np.concatenate(xs, axis=1 + axis)
        elif op == "conv_transpose":
            k = _per_axis(node.get("kernel"), ndim, 1)
            s = _per_axis(node.get("stride"), ndim, 1)
            d = _per_axis(node.get("dilation"), ndim, 1)
            op_ = _per_axis(node.get("output_padding"), ndim, 0)
            for a, (b, e) in enumerate(_pads(node, ndim)):
                x = _axis_op(x, a, lambda v, a=a, b=b, e=e: _transposed(
                    v, k[a], s[a], d[a], b, e, op_[a]))
        elif op == "upsample":  # integer-scale nearest only: np.repeat
            for a in range(ndim):
                x = np.repeat(x, node["scale"], axis=1 + a)
        elif op == "pixel_shuffle":  # spatially, output o reads input o // factor
            for a in range(ndim):
                x = np.repeat(x, node["factor"], axis=1 + a)
        elif op == "slice":
            start = _per_axis(node.get("start"), ndim, 0)
            step = _per_axis(node.get("step"), ndim, 1)
            stop = node.get("stop")
            for a in range(ndim):
                idx = [slice(None)] * x.ndim
                idx[1 + a] = slice(start[a], None if stop is None else _per_axis(stop, ndim, 0)[a],
                                   step[a])
                x = x[tuple(idx)]
        elif op == "global":
            x = x.sum(axis=tuple(range(1, x.ndim)), keepdims=True)
        else:
            raise NotImplementedError(op)
        values[node["name"]] = x
    return values


def boxes(values: np.ndarray, in_shape) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (lo, hi) per input axis of every output position's nonzero inputs.

    Returns arrays of shape (D, *out_shape); positions that depend on nothing get lo > hi.
    """
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in in_shape], indexing="ij")).reshape(
        len(in_shape), -1)
    nz = values.reshape(values.shape[0], -1) > 0  # (n_inputs, n_outputs)
    out_shape = values.shape[1:]
    lo = np.full((len(in_shape), nz.shape[1]), 1)
    hi = np.full((len(in_shape), nz.shape[1]), 0)
    for o in range(nz.shape[1]):
        rows = np.nonzero(nz[:, o])[0]
        if len(rows):
            lo[:, o] = grid[:, rows].min(axis=1)
            hi[:, o] = grid[:, rows].max(axis=1)
    return lo.reshape((len(in_shape), *out_shape)), hi.reshape((len(in_shape), *out_shape))
