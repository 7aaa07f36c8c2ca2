"""Rules for ops that read windows along spatial dims: convolution, pooling, upsampling,
padding, pixel shuffle. Window dims are the last ``nd`` dims of the input (so unbatched inputs
work too); sizes come from the traced shapes, so ceil_mode, 'same' padding and output_padding
need no separate arithmetic.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .. import indexmaps
from ..geometry import Window
from ..limits import SMALLER, check_memory
from .torch_rules import (
                          RULES,
                          OpCall,
                          PerOutput,
                          RuleError,
                          aten_ops,
                          reads,
                          whole,
                          window,
)


def _window_dims(call: OpCall, key: str, nd: int) -> tuple[Any, int]:
    x = call.arg(key)
    if x is None:
        raise RuleError(f"argument {key!r} does not depend on the input")
    return x, len(x.shape) - nd


def _windows(call: OpCall, x: Any, first: int, kernel, stride, dilation, left) -> dict:
    """{dim: window map} with the right padding implied by the traced output size."""
    dims = {}
    for i in range(len(kernel)):
        d = first + i
        n_in, n_out = x.shape[d], call.out_shape[d]
        span = dilation[i] * (kernel[i] - 1) + 1
        right = (n_out - 1) * stride[i] + span - n_in - left[i]
        dims[d] = window(d, Window(kernel=kernel[i], stride=stride[i], dilation=dilation[i],
                                   pad=(left[i], right)))
    return dims


@RULES.register(*aten_ops("conv1d.default", "conv2d.default", "conv3d.default",
                          "conv1d.padding", "conv2d.padding", "conv3d.padding",
                          "convolution.default", "_convolution.default"))
def convolution(call: OpCall) -> Any:
    """Convolution: a window per spatial dim; int, tuple, 'same' (torch: left = total // 2) and
    'valid' padding; reflect/replicate/circular padding_mode arrives as a separate pad op."""
    if call.args.get("transposed"):
        return conv_transpose(call)
    kernel = tuple(call.shape(call.args["weight"])[2:])
    nd = len(kernel)
    x, first = _window_dims(call, "input", nd)
    stride, dilation = call.ints("stride", nd, 1), call.ints("dilation", nd, 1)
    padding = call.args.get("padding")
    if isinstance(padding, str):
        if padding == "same":
            left = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        elif padding == "valid":
            left = (0,) * nd
        else:
            raise RuleError(f"padding={padding!r}")
    else:
        left = call.ints("padding", nd, 0)
    dims = _windows(call, x, first, kernel, stride, dilation, left)
    if first >= 1:
        dims[first - 1] = whole(first - 1)  # channels (lumped; matters if a view made it spatial)
    return call.along("input", dims)


@RULES.register(*aten_ops("conv_transpose1d.default", "conv_transpose2d.input",
                          "conv_transpose3d.input"))
def conv_transpose(call: OpCall) -> Any:
    """Transposed convolution: output o reads input i where o = i*stride - padding + m*dilation
    (explicit reads: not an integer-stride window, so r, S, P are undefined after it)."""
    kernel = tuple(call.shape(call.args["weight"])[2:])
    nd = len(kernel)
    x, first = _window_dims(call, "input", nd)
    stride, dilation = call.ints("stride", nd, 1), call.ints("dilation", nd, 1)
    padding = call.ints("padding", nd, 0)
    dims: dict[int, Any] = {}
    for i in range(nd):
        d = first + i
        idx = indexmaps.transposed(x.shape[d], call.out_shape[d], kernel[i], stride[i],
                                   dilation[i], padding[i])
        dims[d] = reads(d, idx, "transposed conv")
    if first >= 1:
        dims[first - 1] = whole(first - 1)
    return call.along("input", dims)


@RULES.register(*aten_ops("max_pool1d.default", "max_pool2d.default", "max_pool3d.default",
                          "max_pool1d_with_indices.default", "max_pool2d_with_indices.default",
                          "max_pool3d_with_indices.default", "avg_pool1d.default",
                          "avg_pool2d.default", "avg_pool3d.default"))
def pooling(call: OpCall) -> Any:
    """Max/avg pooling (lp pooling decomposes into avg pooling): a window per spatial dim;
    ceil_mode needs nothing special, the traced output size fixes the last window."""
    nd = _nd(call)
    kernel = call.ints("kernel_size", nd)
    x, first = _window_dims(call, "self", nd)
    stride = call.ints("stride", nd, 0)
    stride = tuple(s or k for s, k in zip(stride, kernel))
    dilation = call.ints("dilation", nd, 1) if "dilation" in call.args else (1,) * nd
    left = call.ints("padding", nd, 0)
    result = call.along("self", _windows(call, x, first, kernel, stride, dilation, left))
    if len(call.out_shapes) > 1:  # with indices: both outputs read the same windows
        return PerOutput((result, result))
    return result


def _nd(call: OpCall) -> int:
    """Number of window dims from the op's name (max_pool2d -> 2)."""
    name = call.op.overloadpacket.__name__
    found = re.search(r"(\d)d", name)
    if not found:
        raise RuleError(f"cannot tell the number of spatial dims of {name}")
    return int(found.group(1))


@RULES.register(*aten_ops("adaptive_avg_pool1d.default", "adaptive_avg_pool2d.default",
                          "adaptive_avg_pool3d.default", "_adaptive_avg_pool2d.default",
                          "_adaptive_avg_pool3d.default", "adaptive_max_pool1d.default",
                          "adaptive_max_pool2d.default", "adaptive_max_pool3d.default"))
def adaptive_pooling(call: OpCall) -> Any:
    """Adaptive pooling: bin i reads [floor(i*n/out), ceil((i+1)*n/out)); global when out is
    1 and n > 1, a window when out divides n (a 1-pixel axis is read in place, as reductions
    and the spec's ``global`` read it), explicit bins otherwise."""
    nd = len(call.args["output_size"])
    x, first = _window_dims(call, "self", nd)
    dims: dict[int, Any] = {}
    for i in range(nd):
        d = first + i
        n, m = x.shape[d], call.out_shape[d]
        if m == 1 and n > 1:
            dims[d] = whole(d)
        elif n % m == 0:
            dims[d] = window(d, Window(kernel=n // m, stride=n // m))
        else:
            o = np.arange(m)
            start, end = (o * n) // m, ((o + 1) * n + m - 1) // m
            width = int((end - start).max())
            idx = start[:, None] + np.arange(width)[None, :]
            dims[d] = reads(d, np.where(idx < end[:, None], idx, -1), "adaptive pool")
    result = call.along("self", dims)
    if len(call.out_shapes) > 1:
        return PerOutput((result, result))
    return result


_UPSAMPLE = ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
             "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
             "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
             "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bilinear2d_aa",
             "_upsample_bicubic2d_aa")


@RULES.register(*aten_ops(*(f"{name}.{ov}" for name in _UPSAMPLE for ov in ("vec", "default"))))
def upsample(call: OpCall) -> Any:
    """Interpolation (nearest, nearest-exact, (bi/tri)linear, bicubic, antialiased), with
    torch's own index arithmetic: the op's kernel is run on one-hot probes along each axis,
    with the traced output size and the same scales (scale_factor and size give different
    scales), so the reads are exactly the taps with a nonzero weight."""
    import torch

    packet = call.op.overloadpacket
    name = packet.__name__
    nd = _nd(call)
    x, first = _window_dims(call, "input" if "input" in call.args else "self", nd)
    linear = "align_corners" in call.args
    align = bool(call.args.get("align_corners")) if linear else None
    if "scale_factors" in call.args:
        factors = call.args.get("scale_factors")
        scales = list(factors) if factors else [None] * nd
    elif nd == 1:
        scales = [call.args.get("scales")]
    else:
        scales = [call.args.get(k) for k in ("scales_d", "scales_h", "scales_w")[3 - nd:]]
    default = packet.default
    dtype = call.dtype if call.dtype in (torch.float32, torch.float64) else torch.float32
    dims: dict[int, Any] = {}
    for i in range(nd):
        d = first + i
        n_in, n_out = x.shape[d], call.out_shape[d]
        # other axes: size 2 kept as is (torch's antialiased kernels take a different path
        # when an axis has size 1, so only a real size 1 is probed as 1)
        other = [min(x.shape[first + j], 2) for j in range(nd)]
        size = [n_out if j == i else other[j] for j in range(nd)]
        scale = [scales[j] if j == i else None for j in range(nd)]
        block = int(np.prod(other)) * max(n_in, n_out)  # elements per probed input position
        check_memory(16 * n_out * n_in, f"the read map of {name} from {n_in} to {n_out} "
                     "positions", SMALLER)
        support = np.zeros((n_out, n_in), dtype=bool)
        step = max(1, (1 << 22) // block)  # one-hot probes in chunks of ~4M elements
        for start in range(0, n_in, step):
            rows = torch.arange(start, min(start + step, n_in))
            probe = (rows[:, None] == torch.arange(n_in)[None, :]).to(dtype).reshape(
                (len(rows), 1) + tuple(n_in if j == i else 1 for j in range(nd))).expand(
                (len(rows), 1) + tuple(n_in if j == i else other[j] for j in range(nd)))
            args = (probe.contiguous(), size) + ((align,) if linear else ()) + tuple(scale)
            with torch.no_grad():
                y = default(*args)[(slice(None), 0) + tuple(
                    slice(None) if j == i else 0 for j in range(nd))]
            support[:, start:start + len(rows)] = (y != 0).T.numpy()
        width = max(int(support.sum(axis=1).max()), 1)
        idx = np.full((n_out, width), -1, dtype=np.int64)
        for o in range(n_out):
            src = np.flatnonzero(support[o])
            idx[o, :len(src)] = src
        dims[d] = reads(d, idx, name.lstrip("_").replace("upsample_", "upsample "))
    return call.along("input" if "input" in call.args else "self", dims)


@RULES.register(*aten_ops("pixel_shuffle.default"))
def pixel_shuffle(call: OpCall) -> Any:
    """(C*r*r, H, W) -> (C, H*r, W*r): output o reads input o // r (channels lumped)."""
    r = int(call.args["upscale_factor"])
    x = call.arg("self")
    assert x is not None
    nd = len(x.shape)
    dims: dict[int, Any] = {nd - 3: whole(nd - 3)}
    for d in (nd - 2, nd - 1):
        dims[d] = reads(d, indexmaps.pixel_shuffle(x.shape[d], r), "pixel shuffle")
    return call.along("self", dims)


@RULES.register(*aten_ops("pixel_unshuffle.default"))
def pixel_unshuffle(call: OpCall) -> Any:
    """(C, H, W) -> (C*r*r, H/r, W/r): output i reads the block [i*r, i*r + r) (a window)."""
    r = int(call.args["downscale_factor"])
    x = call.arg("self")
    assert x is not None
    nd = len(x.shape)
    dims: dict[int, Any] = {nd - 3: whole(nd - 3)}
    for d in (nd - 2, nd - 1):
        dims[d] = window(d, Window(kernel=r, stride=r))
    return call.along("self", dims)


_PAD_MODES = {"reflection": "reflect", "replication": "replicate", "constant": "constant"}


@RULES.register(*aten_ops("pad.default", "constant_pad_nd.default", "reflection_pad1d.default",
                          "reflection_pad2d.default", "reflection_pad3d.default",
                          "replication_pad1d.default", "replication_pad2d.default",
                          "replication_pad3d.default", "_pad_circular.default"))
def pad(call: OpCall) -> Any:
    """Padding of the last dims, pairs (before, after) from the last dim backwards; negative
    pads crop. Constant: a window with padding; reflect/replicate/circular: the same window for
    r, S, P and explicit reads of the mirrored/clamped/wrapped pixels for exact regions."""
    name = call.op.overloadpacket.__name__
    if name == "pad":
        mode = call.args.get("mode") or "constant"
    elif name == "_pad_circular":
        mode = "circular"
    else:
        mode = _PAD_MODES.get(name.split("_")[0], "constant")
    pads = [int(p) for p in (call.args.get("pad") or call.args.get("padding"))]
    x = call.arg("self")
    assert x is not None
    nd = len(x.shape)
    dims: dict[int, Any] = {}
    for i in range(len(pads) // 2):
        d = nd - 1 - i
        before, after = pads[2 * i], pads[2 * i + 1]
        w = Window(pad=(before, after))
        if mode == "constant":
            dims[d] = window(d, w, "pad")
        else:
            dims[d] = reads(d, indexmaps.padded(x.shape[d], before, after, mode),
                            f"{mode} pad", w)
    return call.along("self", dims)
