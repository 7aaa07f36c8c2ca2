"""Test networks in plain jax/lax (no Flax): VGG-16, a ResNet, a U-Net, a dilated net.

Each model is ``<name>_init(seed, width) -> params`` and ``<name>(params, x, endpoint=None)``
on NHWC input, returning the output (or the named end-point). Layers are wrapped in
``jax.named_scope`` with the PyTorch module names (``layer2.0.downsample``), so end-points are
node paths. Widths are small; kernels, strides, padding and dilations are the real ones.
``*_target()`` gives the ``(fn, params)`` pair the CLI loads (``models_jax:vgg16_target``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")


def _rng(seed):
    return np.random.default_rng(seed)


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


def batch_norm(p, x):  # eval mode
    return (x - p["mean"]) / jnp.sqrt(p["var"] + 1e-5) * p["scale"] + p["bias"]


def max_pool(x, k, s, padding=0):
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, k, k, 1), (1, s, s, 1), pad)


class _Endpoints:
    """Collects named end-points; ``stop`` returns the requested one (or the last)."""

    def __init__(self, endpoint):
        self.endpoint, self.found = endpoint, {}

    def __call__(self, name, x):
        self.found[name] = x
        return x

    def result(self, x):
        return x if self.endpoint is None else self.found[self.endpoint]


# ---- VGG-16 ---------------------------------------------------------------------------------

VGG_BLOCKS = (2, 2, 3, 3, 3)


def vgg16_init(seed=0, width=2, in_ch=3):
    rng, params, cin = _rng(seed), {}, in_ch
    for b, n in enumerate(VGG_BLOCKS, 1):
        cout = width * min(2 ** (b - 1), 8)
        for i in range(1, n + 1):
            params[f"conv{b}_{i}"] = _conv_params(rng, 3, cin, cout)
            cin = cout
    return params


def vgg16(params, x, endpoint=None):
    ep = _Endpoints(endpoint)
    for b, n in enumerate(VGG_BLOCKS, 1):
        for i in range(1, n + 1):
            name = f"conv{b}_{i}"
            with jax.named_scope(name):
                x = ep(name, jax.nn.relu(conv(params[name], x, padding=1)))
        with jax.named_scope(f"pool{b}"):
            x = ep(f"pool{b}", max_pool(x, 2, 2))
    return ep.result(x)


def vgg16_target():
    return vgg16, vgg16_init(width=1)


# ---- ResNet (torchvision BasicBlock geometry) ---------------------------------------------------

def resnet_init(seed=0, width=2, blocks=(2, 2, 2, 2), in_ch=3):
    rng = _rng(seed)
    params = {"conv1": _conv_params(rng, 7, in_ch, width, bias=False),
              "bn1": _bn_params(rng, width)}
    cin = width
    for stage, n in enumerate(blocks, 1):
        cout = width * 2 ** (stage - 1)
        for j in range(n):
            stride = 2 if stage > 1 and j == 0 else 1
            blk = {"conv1": _conv_params(rng, 3, cin, cout, bias=False),
                   "bn1": _bn_params(rng, cout),
                   "conv2": _conv_params(rng, 3, cout, cout, bias=False),
                   "bn2": _bn_params(rng, cout)}
            if stride != 1 or cin != cout:
                blk["downsample"] = {"conv": _conv_params(rng, 1, cin, cout, bias=False),
                                     "bn": _bn_params(rng, cout)}
            params[f"layer{stage}.{j}"] = blk
            cin = cout
    params["fc"] = {"w": jnp.asarray(rng.normal(size=(cin, 5))), "b": jnp.zeros(5)}
    return params


def _basic_block(p, x, stride):
    with jax.named_scope("conv1"):
        out = conv(p["conv1"], x, stride, 1)
    with jax.named_scope("bn1"):
        out = jax.nn.relu(batch_norm(p["bn1"], out))
    with jax.named_scope("conv2"):
        out = conv(p["conv2"], out, 1, 1)
    with jax.named_scope("bn2"):
        out = batch_norm(p["bn2"], out)
    if "downsample" in p:
        with jax.named_scope("downsample"):
            x = batch_norm(p["downsample"]["bn"], conv(p["downsample"]["conv"], x, stride, 0))
    return jax.nn.relu(out + x)


def resnet(params, x, endpoint=None):
    ep = _Endpoints(endpoint)
    with jax.named_scope("conv1"):
        x = ep("conv1", conv(params["conv1"], x, 2, 3))
    with jax.named_scope("bn1"):
        x = jax.nn.relu(batch_norm(params["bn1"], x))
    with jax.named_scope("maxpool"):
        x = ep("maxpool", max_pool(x, 3, 2, 1))
    stage = 1
    while any(k.startswith(f"layer{stage}.") for k in params):
        with jax.named_scope(f"layer{stage}"):
            j = 0
            while f"layer{stage}.{j}" in params:
                with jax.named_scope(str(j)):
                    x = _basic_block(params[f"layer{stage}.{j}"], x,
                                     2 if stage > 1 and j == 0 else 1)
                j += 1
        x = ep(f"layer{stage}", x)
        stage += 1
    with jax.named_scope("avgpool"):
        x = ep("avgpool", jnp.mean(x, axis=(1, 2)))
    with jax.named_scope("fc"):
        x = ep("fc", x @ params["fc"]["w"].astype(x.dtype) + params["fc"]["b"])
    return ep.result(x)


# ---- U-Net ------------------------------------------------------------------------------------

def unet_init(seed=0, width=2, in_ch=1):
    rng, w = _rng(seed), width
    p = {}
    chans = {"enc1": (in_ch, w), "enc2": (w, 2 * w), "mid": (2 * w, 4 * w),
             "dec2": (4 * w, 2 * w), "dec1": (3 * w, w)}
    for name, (cin, cout) in chans.items():
        p[name] = {"a": _conv_params(rng, 3, cin, cout), "b": _conv_params(rng, 3, cout, cout)}
    p["up2"] = _conv_params(rng, 2, 4 * w, 2 * w)  # transposed 2x2, stride 2
    p["up1"] = _conv_params(rng, 1, 2 * w, 2 * w)  # after a bilinear x2 resize
    p["head"] = _conv_params(rng, 1, w, 1)
    return p


def _double(p, x):
    return jax.nn.relu(conv(p["b"], jax.nn.relu(conv(p["a"], x, 1, 1)), 1, 1))


def unet(params, x, endpoint=None):
    ep = _Endpoints(endpoint)
    with jax.named_scope("enc1"):
        e1 = ep("enc1", _double(params["enc1"], x))
    with jax.named_scope("enc2"):
        e2 = ep("enc2", _double(params["enc2"], max_pool(e1, 2, 2)))
    with jax.named_scope("mid"):
        m = ep("mid", _double(params["mid"], max_pool(e2, 2, 2)))
    with jax.named_scope("up2"):  # transposed convolution: lhs_dilation
        u2 = lax.conv_transpose(m, params["up2"]["w"].astype(m.dtype), (2, 2), "VALID",
                                dimension_numbers=DN) + params["up2"]["b"]
        u2 = ep("up2", u2)
    with jax.named_scope("dec2"):
        d2 = ep("dec2", _double(params["dec2"], jnp.concatenate([u2, e2], axis=-1)))
    with jax.named_scope("up1"):  # bilinear resize: a constant matrix along each axis
        n, h, w, c = d2.shape
        u1 = ep("up1", conv(params["up1"], jax.image.resize(d2, (n, 2 * h, 2 * w, c), "bilinear")))
    with jax.named_scope("dec1"):
        d1 = ep("dec1", _double(params["dec1"], jnp.concatenate([u1, e1], axis=-1)))
    with jax.named_scope("head"):
        out = ep("head", conv(params["head"], d1))
    return ep.result(out)


# ---- dilated (context module of Yu & Koltun) --------------------------------------------------

DILATIONS = (1, 1, 2, 4, 8, 16, 1)


def dilated_init(seed=0, width=2, in_ch=1):
    rng, p, cin = _rng(seed), {}, in_ch
    for i, _ in enumerate(DILATIONS, 1):
        p[f"conv{i}"] = _conv_params(rng, 3, cin, width)
        cin = width
    p["stem"] = _conv_params(rng, 3, in_ch, in_ch)
    return p


def dilated(params, x, endpoint=None):
    ep = _Endpoints(endpoint)
    with jax.named_scope("stem"):
        x = ep("stem", jax.nn.relu(conv(params["stem"], x, 2, 1)))
    for i, d in enumerate(DILATIONS, 1):
        with jax.named_scope(f"conv{i}"):
            x = ep(f"conv{i}", jax.nn.relu(conv(params[f"conv{i}"], x, 1, d, d)))
    return ep.result(x)


MODELS = {"vgg16": (vgg16_init, vgg16), "resnet": (resnet_init, resnet),
          "unet": (unet_init, unet), "dilated": (dilated_init, dilated)}
