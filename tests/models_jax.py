"""Test networks in plain jax/lax (no Flax): VGG-16, ResNets, a U-Net, dilated nets.

Each model is ``<name>_init(seed, width, ...) -> params`` and ``<name>(params, x,
endpoint=None)`` on NHWC input, returning the output, or the activation at ``endpoint`` (a
module path). Layers are wrapped in ``jax.named_scope`` with the module paths of the PyTorch
twins in ``models_torch.py`` (``conv3.conv3_2``, ``layer2.0.downsample.0``, ``down.1.1.3``), so
end-points are node paths and the parity tests match them by name. Widths are small; kernels,
strides, padding and dilations are the real ones. ``vgg16_target()`` is the ``(fn, params)``
pair the CLI loads (``models_jax:vgg16_target``).
"""

from __future__ import annotations

from contextlib import contextmanager

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")


# ---- layers -----------------------------------------------------------------------------------

def _conv_params(rng, k, cin, cout, bias=True):
    p = {"w": jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin))}
    if bias:
        p["b"] = jnp.asarray(rng.normal(size=(cout,)) * 0.1)
    return p


def _bn_params(rng, c):
    return {"scale": jnp.asarray(rng.uniform(0.5, 1.5, c)), "bias": jnp.asarray(rng.normal(size=c)),
            "mean": jnp.asarray(rng.normal(size=c)), "var": jnp.asarray(rng.uniform(0.5, 1.5, c))}


def conv(p, x, stride=1, padding=0, dilation=1):
    pad = padding if isinstance(padding, str) else ((padding, padding), (padding, padding))
    y = lax.conv_general_dilated(x, p["w"].astype(x.dtype), (stride, stride), pad,
                                 rhs_dilation=(dilation, dilation), dimension_numbers=DN)
    return y + p["b"].astype(x.dtype) if "b" in p else y


def conv_transpose(p, x, stride):
    """PyTorch ConvTranspose2d(k, stride=k, padding=0): output 2n, o reads o // stride."""
    y = lax.conv_transpose(x, p["w"].astype(x.dtype), (stride, stride), "VALID",
                           dimension_numbers=DN)
    return y + p["b"].astype(x.dtype)


def batch_norm(p, x):  # eval mode
    return (x - p["mean"]) / jnp.sqrt(p["var"] + 1e-5) * p["scale"] + p["bias"]


def max_pool(x, k, s, padding=0):
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, k, k, 1), (1, s, s, 1), pad)


def resize(x, h, w):
    """PyTorch F.interpolate(mode='bilinear', align_corners=False) has the same support."""
    return jax.image.resize(x, (x.shape[0], h, w, x.shape[3]), "bilinear")


class _Net:
    """Scopes and end-points of one forward pass."""

    def __init__(self, endpoint):
        self.endpoint, self.found, self.path = endpoint, {}, []

    @contextmanager
    def scope(self, name):
        self.path.append(str(name))
        with jax.named_scope(str(name)):
            yield
        self.path.pop()

    def result(self, x):
        return x if self.endpoint is None else self.found[self.endpoint]

    def layer(self, name, fn, *args, **kw):
        """``fn(*args)`` as module ``name``."""
        with self.scope(name):
            return self._keep(fn(*args, **kw))

    def _keep(self, x):
        """``x`` as the output of the current scope."""
        self.found[".".join(self.path)] = x
        return x


# ---- VGG-16 (models_torch.VGG16: TF-slim geometry) ------------------------------------------

VGG_BLOCKS = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))


def vgg16_init(seed=0, width=2, classes=3, fc=True, in_ch=3):
    rng, params, cin = np.random.default_rng(seed), {}, in_ch
    for b, (n, mult) in enumerate(VGG_BLOCKS, 1):
        for i in range(1, n + 1):
            params[f"conv{b}_{i}"] = _conv_params(rng, 3, cin, width * mult)
            cin = width * mult
    if fc:
        params["fc6"] = _conv_params(rng, 7, cin, 4 * width)
        params["fc7"] = _conv_params(rng, 1, 4 * width, 4 * width)
        params["fc8"] = _conv_params(rng, 1, 4 * width, classes)
    return params


def vgg16(params, x, endpoint=None):
    net = _Net(endpoint)
    for b, (n, _) in enumerate(VGG_BLOCKS, 1):
        with net.scope(f"conv{b}"):
            for i in range(1, n + 1):
                x = net.layer(f"conv{b}_{i}", conv, params[f"conv{b}_{i}"], x, padding=1)
                x = net.layer(f"relu{b}_{i}", jax.nn.relu, x)
            net._keep(x)
        x = net.layer(f"pool{b}", max_pool, x, 2, 2)
    if "fc6" in params:
        x = jax.nn.relu(net.layer("fc6", conv, params["fc6"], x))
        x = jax.nn.relu(net.layer("fc7", conv, params["fc7"], x))
        x = net.layer("fc8", conv, params["fc8"], x)
    return net.result(x)


def vgg16_target():
    return vgg16, vgg16_init(width=1)


# ---- ResNet (models_torch.ResNet: torchvision, bottlenecks; or basic blocks) ----------------

def resnet_init(seed=0, width=4, layers=(3, 4, 6, 3), block="bottleneck", classes=10, in_ch=3):
    rng = np.random.default_rng(seed)
    params = {"conv1": _conv_params(rng, 7, in_ch, width, bias=False),
              "bn1": _bn_params(rng, width)}
    expansion = 4 if block == "bottleneck" else 1
    cin = width
    for i, n in enumerate(layers, 1):
        planes = width * 2 ** (i - 1)
        out = planes * expansion
        for j in range(n):
            stride = 2 if j == 0 and i > 1 else 1
            if block == "bottleneck":
                p = {"conv1": _conv_params(rng, 1, cin, planes, False),
                     "bn1": _bn_params(rng, planes),
                     "conv2": _conv_params(rng, 3, planes, planes, False),
                     "bn2": _bn_params(rng, planes),
                     "conv3": _conv_params(rng, 1, planes, out, False), "bn3": _bn_params(rng, out)}
            else:
                p = {"conv1": _conv_params(rng, 3, cin, out, False), "bn1": _bn_params(rng, out),
                     "conv2": _conv_params(rng, 3, out, out, False), "bn2": _bn_params(rng, out)}
            if stride != 1 or cin != out:
                p["downsample"] = {"0": _conv_params(rng, 1, cin, out, False),
                                   "1": _bn_params(rng, out)}
            params[f"layer{i}.{j}"] = p
            cin = out
    params["fc"] = {"w": jnp.asarray(rng.normal(size=(cin, classes))), "b": jnp.zeros(classes)}
    return params


def _block(net, p, x, stride):
    bottleneck = "conv3" in p
    identity = x
    if "downsample" in p:
        with net.scope("downsample"):
            identity = net.layer("0", conv, p["downsample"]["0"], x, stride)
            identity = net.layer("1", batch_norm, p["downsample"]["1"], identity)
    relu = lambda v: net.layer("relu", jax.nn.relu, v)
    if bottleneck:
        out = relu(net.layer("bn1", batch_norm, p["bn1"], net.layer("conv1", conv, p["conv1"], x)))
        out = relu(net.layer("bn2", batch_norm, p["bn2"],
                             net.layer("conv2", conv, p["conv2"], out, stride, 1)))
        out = net.layer("bn3", batch_norm, p["bn3"], net.layer("conv3", conv, p["conv3"], out))
    else:
        out = relu(net.layer("bn1", batch_norm, p["bn1"],
                             net.layer("conv1", conv, p["conv1"], x, stride, 1)))
        out = net.layer("bn2", batch_norm, p["bn2"],
                        net.layer("conv2", conv, p["conv2"], out, 1, 1))
    return relu(out + identity)


def resnet(params, x, endpoint=None):
    net = _Net(endpoint)
    x = net.layer("conv1", conv, params["conv1"], x, 2, 3)
    x = net.layer("relu", jax.nn.relu, net.layer("bn1", batch_norm, params["bn1"], x))
    x = net.layer("maxpool", max_pool, x, 3, 2, 1)
    i = 1
    while f"layer{i}.0" in params:
        with net.scope(f"layer{i}"):
            j = 0
            while f"layer{i}.{j}" in params:
                with net.scope(j):
                    x = net._keep(_block(net, params[f"layer{i}.{j}"], x,
                                         2 if j == 0 and i > 1 else 1))
                j += 1
            net._keep(x)
        i += 1
    x = net.layer("avgpool", lambda v: jnp.mean(v, axis=(1, 2)), x)
    x = net.layer("fc", lambda v: v @ params["fc"]["w"].astype(v.dtype) + params["fc"]["b"], x)
    return net.result(x)


# ---- U-Net (models_torch.UNet: transposed convs = lhs_dilation) --------------------------------

def _double_init(rng, cin, cout):
    return {"0": _conv_params(rng, 3, cin, cout), "1": _bn_params(rng, cout),
            "3": _conv_params(rng, 3, cout, cout), "4": _bn_params(rng, cout)}


def _double(net, p, x):
    x = net.layer("0", conv, p["0"], x, 1, 1)
    x = net.layer("2", jax.nn.relu, net.layer("1", batch_norm, p["1"], x))
    x = net.layer("3", conv, p["3"], x, 1, 1)
    return net.layer("5", jax.nn.relu, net.layer("4", batch_norm, p["4"], x))


def unet_init(seed=0, width=2, depth=3, classes=2, in_ch=3):
    rng, w = np.random.default_rng(seed), width
    p = {"inc": _double_init(rng, in_ch, w)}
    for i in range(depth):
        p[f"down.{i}"] = _double_init(rng, w, 2 * w)
        w *= 2
    for i in range(depth):
        p[f"up.{i}"] = _conv_params(rng, 2, w, w // 2)
        p[f"dec.{i}"] = _double_init(rng, w, w // 2)
        w //= 2
    p["outc"] = _conv_params(rng, 1, w, classes)
    return p


def unet(params, x, endpoint=None):
    net = _Net(endpoint)
    depth = sum(k.startswith("down.") for k in params)
    with net.scope("inc"):
        skips = [net._keep(_double(net, params["inc"], x))]
    for i in range(depth):
        with net.scope("down"), net.scope(i):
            y = net.layer("0", max_pool, skips[-1], 2, 2)
            with net.scope("1"):
                y = net._keep(_double(net, params[f"down.{i}"], y))
            skips.append(net._keep(y))
    y = skips.pop()
    for i in range(depth):
        with net.scope("up"):
            u = net.layer(i, conv_transpose, params[f"up.{i}"], y, 2)
        with net.scope("dec"), net.scope(i):
            y = net._keep(_double(net, params[f"dec.{i}"], jnp.concatenate([skips.pop(), u], -1)))
    return net.result(net.layer("outc", conv, params["outc"], y))


# ---- DeepLab-style dilated net (models_torch.DeepLab) ------------------------------------------

ASPP_RATES = (2, 4, 6)


def deeplab_init(seed=0, width=2, classes=2, in_ch=3, rates=ASPP_RATES):
    rng, w = np.random.default_rng(seed), width
    p = {"stem.0": _conv_params(rng, 7, in_ch, w), "stage1.0": _conv_params(rng, 3, w, 2 * w),
         "stage1.2": _conv_params(rng, 3, 2 * w, 2 * w),
         "stage2.0": _conv_params(rng, 3, 2 * w, 4 * w),
         "stage2.2": _conv_params(rng, 3, 4 * w, 4 * w),
         "stage3.0": _conv_params(rng, 3, 4 * w, 4 * w),
         "aspp.b0": _conv_params(rng, 1, 4 * w, 2 * w),
         "aspp.pool": _conv_params(rng, 1, 4 * w, 2 * w),
         "aspp.project": _conv_params(rng, 1, 2 * w * (len(rates) + 2), 2 * w),
         "head": _conv_params(rng, 1, 2 * w, classes)}
    for i, _ in enumerate(rates, 1):
        p[f"aspp.b{i}"] = _conv_params(rng, 3, 4 * w, 2 * w)
    return p


def _seq(net, name, steps, x):
    """An nn.Sequential: (index, fn) steps, fn(x)."""
    with net.scope(name):
        for i, fn in steps:
            x = net.layer(i, fn, x)
        return net._keep(x)


def deeplab(params, x, endpoint=None):
    net = _Net(endpoint)
    p = params
    relu = jax.nn.relu
    h, w = x.shape[1:3]
    y = _seq(net, "stem", [(0, lambda v: conv(p["stem.0"], v, 2, 3)), (1, relu),
                           (2, lambda v: max_pool(v, 3, 2, 1))], x)
    y = _seq(net, "stage1", [(0, lambda v: conv(p["stage1.0"], v, 2, 1)), (1, relu),
                             (2, lambda v: conv(p["stage1.2"], v, 1, 1)), (3, relu)], y)
    y = _seq(net, "stage2", [(0, lambda v: conv(p["stage2.0"], v, 1, 2, 2)), (1, relu),
                             (2, lambda v: conv(p["stage2.2"], v, 1, 2, 2)), (3, relu)], y)
    y = _seq(net, "stage3", [(0, lambda v: conv(p["stage3.0"], v, 1, 4, 4)), (1, relu)], y)
    with net.scope("aspp"):
        branches = [_seq(net, "b0", [(0, lambda v: conv(p["aspp.b0"], v)), (1, relu)], y)]
        for i, r in enumerate(ASPP_RATES, 1):
            branches.append(_seq(net, f"b{i}", [(0, lambda v, i=i, r=r: conv(
                p[f"aspp.b{i}"], v, 1, r, r)), (1, relu)], y))
        pooled = _seq(net, "pool", [(0, lambda v: jnp.mean(v, axis=(1, 2), keepdims=True)),
                                    (1, lambda v: conv(p["aspp.pool"], v)), (2, relu)], y)
        branches.append(resize(pooled, *y.shape[1:3]))
        y = _seq(net, "project", [(0, lambda v: conv(p["aspp.project"], v)), (1, relu)],
                 jnp.concatenate(branches, -1))
        net._keep(y)
    y = net.layer("head", conv, p["head"], y)
    return net.result(resize(y, h, w))


# ---- a dilated context module (Yu & Koltun) ----------------------------------------------------

DILATIONS = (1, 1, 2, 4, 8, 16, 1)


def dilated_init(seed=0, width=2, in_ch=1):
    rng, p, cin = np.random.default_rng(seed), {}, in_ch
    p["stem"] = _conv_params(rng, 3, in_ch, in_ch)
    for i, _ in enumerate(DILATIONS, 1):
        p[f"conv{i}"] = _conv_params(rng, 3, cin, width)
        cin = width
    return p


def dilated(params, x, endpoint=None):
    net = _Net(endpoint)
    x = jax.nn.relu(net.layer("stem", conv, params["stem"], x, 2, 1))
    for i, d in enumerate(DILATIONS, 1):
        x = jax.nn.relu(net.layer(f"conv{i}", conv, params[f"conv{i}"], x, 1, d, d))
    return net.result(x)


MODELS = {"vgg16": (vgg16_init, vgg16), "resnet": (resnet_init, resnet),
          "unet": (unet_init, unet), "deeplab": (deeplab_init, deeplab),
          "dilated": (dilated_init, dilated)}
