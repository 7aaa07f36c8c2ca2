"""JAX definitions (plain ``jax.lax``, NHWC) of five TF-slim nets of the paper's table.

Structurally identical to the PyTorch definitions in ``experiments/models/slim``: every
kernel, stride and padding as slim builds them. TensorFlow 'SAME' is native here
(``lax.conv_general_dilated`` and ``lax.reduce_window`` with ``padding="SAME"``);
resnet_utils.conv2d_same's explicit padding is passed as explicit pairs; ResNet v1 strides
sit in the last unit of each block. Every layer runs inside ``jax.named_scope`` with the
PyTorch module path (``conv1`` then ``conv1_1`` = ``conv1.conv1_1``), so end-points resolve
by path and match the PyTorch nets' ``ENDPOINTS``.

Factories return ``(apply, params)`` with ``apply(params, x)`` on NHWC input; weights are
random, batch norm is in inference form (a per-channel affine map). Channel widths are
``max(int(d * width), min_depth)`` (``width`` 1/8 by default: geometry is what matters).
Nets stop at the paper's end-point (the last spatial one); classifier heads are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")
Params = dict[str, Any]
Padding = str | tuple[tuple[int, int], ...]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Net:
    """Scope stack and parameters of one pass: creates weights (``init``) or reads them."""

    def __init__(self, params: Params | None, width: float, min_depth: int, seed: int = 0):
        self.init = params is None
        self.params: Params = {} if params is None else params
        self.rng = np.random.default_rng(seed)
        self.width, self.min_depth = width, min_depth
        self.path: list[str] = []

    def depth(self, d: int) -> int:
        return max(int(d * self.width), self.min_depth)

    @contextmanager
    def scope(self, name: str):
        self.path.append(name)
        try:
            with jax.named_scope(name):
                yield
        finally:
            self.path.pop()

    def param(self, name: str, make: Callable[[], np.ndarray]) -> jax.Array:
        key = "/".join([*self.path, name])
        if self.init:
            self.params[key] = np.asarray(make(), np.float32)  # numpy: no tracer escapes
        return self.params[key]

    # ---- layers -------------------------------------------------------------------------------

    def conv(self, name: str, x, cout: int, kernel, stride=1, *, padding: Padding = "SAME",
             depthwise: bool = False, bn: bool = True, act: Callable | None = jax.nn.relu):
        """slim.conv2d: convolution, batch norm (inference) or bias, activation."""
        kh, kw = _pair(kernel)
        cin = x.shape[-1]
        groups = cin if depthwise else 1
        if depthwise:
            cout = cin
        with self.scope(name):
            fan_in = kh * kw * (cin // groups)
            w = self.param("weights", lambda: self.rng.normal(
                0, (2 / fan_in) ** 0.5, (kh, kw, cin // groups, cout)))
            pad = padding if isinstance(padding, str) else tuple(padding)
            y = lax.conv_general_dilated(x, w, _pair(stride), pad, dimension_numbers=DN,
                                         feature_group_count=groups)
            if bn:
                scale = self.param("bn_scale", lambda: self.rng.uniform(0.5, 1.5, cout))
                shift = self.param("bn_shift", lambda: self.rng.normal(0, 0.1, cout))
                y = y * scale + shift
            else:
                y = y + self.param("biases", lambda: self.rng.normal(0, 0.1, cout))
            if act is not None:
                y = act(y)
        return y

    def max_pool(self, name: str, x, kernel, stride=2, *, padding: Padding = "VALID"):
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        pad = padding if isinstance(padding, str) else ((0, 0), *padding, (0, 0))
        with self.scope(name):
            return lax.reduce_window(x, -jnp.inf, lax.max, (1, kh, kw, 1), (1, sh, sw, 1), pad)

    def avg_pool_same(self, name: str, x, kernel: int):
        """slim.avg_pool2d stride 1 'SAME': padded positions left out of each average."""
        k = kernel
        with self.scope(name):
            total = lax.reduce_window(x, 0.0, lax.add, (1, k, k, 1), (1, 1, 1, 1), "SAME")
            counts = [np.array([min(i + k // 2, n - 1) - max(i - k // 2, 0) + 1
                                for i in range(n)], np.float32) for n in x.shape[1:3]]
            count = np.outer(*counts)[None, :, :, None]
            return total / count


def _build(forward: Callable[[Net, jax.Array], jax.Array], width: float, min_depth: int,
           seed: int = 0, shape: tuple[int, ...] = (1, 224, 224, 3)):
    """``(apply, params)``: params made by tracing ``forward`` once on abstract input."""
    net = Net(None, width, min_depth, seed)
    jax.eval_shape(lambda x: forward(net, x), jax.ShapeDtypeStruct(shape, jnp.float32))
    params = {k: jnp.asarray(v) for k, v in net.params.items()}

    def apply(params: Params, x: jax.Array) -> jax.Array:
        return forward(Net(params, width, min_depth), x)

    apply.__name__ = forward.__name__.lstrip("_")
    return apply, params


# ---- alexnet_v2 -------------------------------------------------------------------------------

def _alexnet_v2(net: Net, x):
    d = net.depth
    x = net.conv("conv1", x, d(64), 11, 4, padding="VALID", bn=False)
    x = net.max_pool("pool1", x, 3, 2)
    x = net.conv("conv2", x, d(192), 5, bn=False)
    x = net.max_pool("pool2", x, 3, 2)
    x = net.conv("conv3", x, d(384), 3, bn=False)
    x = net.conv("conv4", x, d(384), 3, bn=False)
    x = net.conv("conv5", x, d(256), 3, bn=False)
    return net.max_pool("pool5", x, 3, 2)


def alexnet_v2(width: float = 0.125, seed: int = 0):
    """alexnet_v2 up to ``pool5`` (conv1 11x11/4 'VALID', 'VALID' 3x3/2 max pools)."""
    return _build(_alexnet_v2, width, 8, seed)


# ---- vgg_16 -----------------------------------------------------------------------------------

VGG_16 = (2, 2, 3, 3, 3)
VGG_WIDTHS = (64, 128, 256, 512, 512)


def _vgg_16(net: Net, x):
    for i, (n, w) in enumerate(zip(VGG_16, VGG_WIDTHS, strict=True), start=1):
        with net.scope(f"conv{i}"):
            for j in range(1, n + 1):
                x = net.conv(f"conv{i}_{j}", x, net.depth(w), 3, bn=False)
        x = net.max_pool(f"pool{i}", x, 2, 2)
    return x


def vgg_16(width: float = 0.125, seed: int = 0):
    """vgg_16 up to ``pool5`` (3x3 'SAME' convolutions, 2x2/2 'VALID' max pools)."""
    return _build(_vgg_16, width, 8, seed)


# ---- mobilenet_v1 -----------------------------------------------------------------------------

MOBILENET_DEFS = ((2, 32), (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
                  (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))


def _mobilenet_v1(net: Net, x):
    relu6 = jax.nn.relu6
    stride, d = MOBILENET_DEFS[0]
    x = net.conv("Conv2d_0", x, net.depth(d), 3, stride, act=relu6)
    for i, (stride, d) in enumerate(MOBILENET_DEFS[1:], start=1):
        x = net.conv(f"Conv2d_{i}_depthwise", x, 0, 3, stride, depthwise=True, act=relu6)
        x = net.conv(f"Conv2d_{i}_pointwise", x, net.depth(d), 1, act=relu6)
    return x


def mobilenet_v1(width: float = 0.125, seed: int = 0):
    """mobilenet_v1 up to ``Conv2d_13_pointwise`` (``width`` is slim's depth multiplier)."""
    return _build(_mobilenet_v1, width, 8, seed)


# ---- resnet_v1_50 -----------------------------------------------------------------------------

RESNET_V1_50 = (3, 4, 6, 3)
RESNET_BASE = (64, 128, 256, 512)
RESNET_STRIDES = (2, 2, 2, 1)


def _fixed_pad(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """resnet_utils.conv2d_same's explicit padding: ``kernel - 1`` split, before = half."""
    before = (kernel - 1) // 2
    return ((before, kernel - 1 - before),) * 2


def _conv2d_same(net: Net, name: str, x, cout: int, kernel: int, stride: int, **kw):
    padding = "SAME" if stride == 1 else _fixed_pad(kernel)
    return net.conv(name, x, cout, kernel, stride, padding=padding, **kw)


def _bottleneck_v1(net: Net, x, depth: int, bottleneck: int, stride: int):
    if x.shape[-1] == depth:
        shortcut = x if stride == 1 else net.max_pool("shortcut", x, 1, stride, padding="SAME")
    else:
        shortcut = net.conv("shortcut", x, depth, 1, stride, act=None)
    y = net.conv("conv1", x, bottleneck, 1)
    y = _conv2d_same(net, "conv2", y, bottleneck, 3, stride)
    y = net.conv("conv3", y, depth, 1, act=None)
    with net.scope("relu"):
        return jax.nn.relu(shortcut + y)


def _resnet_v1_50(net: Net, x):
    x = _conv2d_same(net, "conv1", x, net.depth(64), 7, 2)
    x = net.max_pool("pool1", x, 3, 2, padding="SAME")
    blocks = zip(RESNET_V1_50, RESNET_BASE, RESNET_STRIDES, strict=True)
    for b, (n, base, stride) in enumerate(blocks, start=1):
        with net.scope(f"block{b}"):
            for u in range(1, n + 1):
                with net.scope(f"unit_{u}"):
                    x = _bottleneck_v1(net, x, net.depth(base * 4), net.depth(base),
                                       stride if u == n else 1)
    return x


def resnet_v1_50(width: float = 0.125, seed: int = 0):
    """resnet_v1_50 up to ``block4`` (strides in the last unit of blocks 1-3)."""
    return _build(_resnet_v1_50, width, 8, seed)


# ---- inception_v3 -----------------------------------------------------------------------------

def _concat(branches: list[jax.Array]) -> jax.Array:
    return jnp.concatenate(branches, axis=-1)


def _branch(net: Net, name: str, x, layers: list[tuple[str, Callable]]):
    with net.scope(name):
        for layer_name, layer in layers:
            x = layer(layer_name, x)
    return x


def _avg_pool_branch(net: Net, x, out: int):
    return _branch(net, "Branch_3", x, [
        ("AvgPool_0a_3x3", lambda n, x: net.avg_pool_same(n, x, 3)),
        ("Conv2d_0b_1x1", lambda n, x: net.conv(n, x, out, 1))])


def _mixed_5(net: Net, x, pool_out: int, b1: tuple[str, str]):
    d, c = net.depth, net.conv
    return _concat([
        _branch(net, "Branch_0", x, [("Conv2d_0a_1x1", lambda n, x: c(n, x, d(64), 1))]),
        _branch(net, "Branch_1", x, [(b1[0], lambda n, x: c(n, x, d(48), 1)),
                                     (b1[1], lambda n, x: c(n, x, d(64), 5))]),
        _branch(net, "Branch_2", x, [("Conv2d_0a_1x1", lambda n, x: c(n, x, d(64), 1)),
                                     ("Conv2d_0b_3x3", lambda n, x: c(n, x, d(96), 3)),
                                     ("Conv2d_0c_3x3", lambda n, x: c(n, x, d(96), 3))]),
        _avg_pool_branch(net, x, d(pool_out))])


def _mixed_6a(net: Net, x):
    d, c = net.depth, net.conv
    return _concat([
        _branch(net, "Branch_0", x, [
            ("Conv2d_1a_1x1", lambda n, x: c(n, x, d(384), 3, 2, padding="VALID"))]),
        _branch(net, "Branch_1", x, [
            ("Conv2d_0a_1x1", lambda n, x: c(n, x, d(64), 1)),
            ("Conv2d_0b_3x3", lambda n, x: c(n, x, d(96), 3)),
            ("Conv2d_1a_1x1", lambda n, x: c(n, x, d(96), 3, 2, padding="VALID"))]),
        _branch(net, "Branch_2", x, [
            ("MaxPool_1a_3x3", lambda n, x: net.max_pool(n, x, 3, 2))])])


def _mixed_6(net: Net, x, mid: int):
    c = net.conv
    m, o = net.depth(mid), net.depth(192)
    return _concat([
        _branch(net, "Branch_0", x, [("Conv2d_0a_1x1", lambda n, x: c(n, x, o, 1))]),
        _branch(net, "Branch_1", x, [("Conv2d_0a_1x1", lambda n, x: c(n, x, m, 1)),
                                     ("Conv2d_0b_1x7", lambda n, x: c(n, x, m, (1, 7))),
                                     ("Conv2d_0c_7x1", lambda n, x: c(n, x, o, (7, 1)))]),
        _branch(net, "Branch_2", x, [("Conv2d_0a_1x1", lambda n, x: c(n, x, m, 1)),
                                     ("Conv2d_0b_7x1", lambda n, x: c(n, x, m, (7, 1))),
                                     ("Conv2d_0c_1x7", lambda n, x: c(n, x, m, (1, 7))),
                                     ("Conv2d_0d_7x1", lambda n, x: c(n, x, m, (7, 1))),
                                     ("Conv2d_0e_1x7", lambda n, x: c(n, x, o, (1, 7)))]),
        _avg_pool_branch(net, x, o)])


def _mixed_7a(net: Net, x):
    c, d = net.conv, net.depth(192)
    return _concat([
        _branch(net, "Branch_0", x, [
            ("Conv2d_0a_1x1", lambda n, x: c(n, x, d, 1)),
            ("Conv2d_1a_3x3", lambda n, x: c(n, x, net.depth(320), 3, 2, padding="VALID"))]),
        _branch(net, "Branch_1", x, [
            ("Conv2d_0a_1x1", lambda n, x: c(n, x, d, 1)),
            ("Conv2d_0b_1x7", lambda n, x: c(n, x, d, (1, 7))),
            ("Conv2d_0c_7x1", lambda n, x: c(n, x, d, (7, 1))),
            ("Conv2d_1a_3x3", lambda n, x: c(n, x, d, 3, 2, padding="VALID"))]),
        _branch(net, "Branch_2", x, [
            ("MaxPool_1a_3x3", lambda n, x: net.max_pool(n, x, 3, 2))])])


def _mixed_7(net: Net, x, branch_1_3x1: str):
    c, d = net.conv, net.depth(384)
    with net.scope("Branch_0"):
        b0 = c("Conv2d_0a_1x1", x, net.depth(320), 1)
    with net.scope("Branch_1"):
        y = c("Conv2d_0a_1x1", x, d, 1)
        b1 = _concat([c("Conv2d_0b_1x3", y, d, (1, 3)), c(branch_1_3x1, y, d, (3, 1))])
    with net.scope("Branch_2"):
        y = c("Conv2d_0a_1x1", x, net.depth(448), 1)
        y = c("Conv2d_0b_3x3", y, d, 3)
        b2 = _concat([c("Conv2d_0c_1x3", y, d, (1, 3)), c("Conv2d_0d_3x1", y, d, (3, 1))])
    b3 = _avg_pool_branch(net, x, net.depth(192))
    return _concat([b0, b1, b2, b3])


def _inception_v3(net: Net, x):
    d, c = net.depth, net.conv
    x = c("Conv2d_1a_3x3", x, d(32), 3, 2, padding="VALID")
    x = c("Conv2d_2a_3x3", x, d(32), 3, padding="VALID")
    x = c("Conv2d_2b_3x3", x, d(64), 3, padding="SAME")
    x = net.max_pool("MaxPool_3a_3x3", x, 3, 2)
    x = c("Conv2d_3b_1x1", x, d(80), 1, padding="VALID")
    x = c("Conv2d_4a_3x3", x, d(192), 3, padding="VALID")
    x = net.max_pool("MaxPool_5a_3x3", x, 3, 2)
    blocks = [
        ("Mixed_5b", lambda x: _mixed_5(net, x, 32, ("Conv2d_0a_1x1", "Conv2d_0b_5x5"))),
        ("Mixed_5c", lambda x: _mixed_5(net, x, 64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5"))),
        ("Mixed_5d", lambda x: _mixed_5(net, x, 64, ("Conv2d_0a_1x1", "Conv2d_0b_5x5"))),
        ("Mixed_6a", lambda x: _mixed_6a(net, x)),
        ("Mixed_6b", lambda x: _mixed_6(net, x, 128)),
        ("Mixed_6c", lambda x: _mixed_6(net, x, 160)),
        ("Mixed_6d", lambda x: _mixed_6(net, x, 160)),
        ("Mixed_6e", lambda x: _mixed_6(net, x, 192)),
        ("Mixed_7a", lambda x: _mixed_7a(net, x)),
        ("Mixed_7b", lambda x: _mixed_7(net, x, "Conv2d_0b_3x1")),
        ("Mixed_7c", lambda x: _mixed_7(net, x, "Conv2d_0c_3x1")),
    ]
    for name, block in blocks:
        with net.scope(name):
            x = block(x)
    return x


def inception_v3(width: float = 0.125, seed: int = 0):
    """inception_v3 up to ``Mixed_7c`` (``width`` is slim's depth multiplier, min depth 16)."""
    return _build(_inception_v3, width, 16, seed)


SLIM_JAX = {"alexnet_v2": alexnet_v2, "vgg_16": vgg_16, "mobilenet_v1": mobilenet_v1,
            "resnet_v1_50": resnet_v1_50, "inception_v3": inception_v3}
