"""JAX definitions (plain ``jax.lax``, NCHW) of zoo networks; factories return ``(fn, params)``.

``small_resnet`` has the geometry of :class:`experiments.models.modern.SmallResNet` (the
quickstart net): 3x3/2 stem, three stages of two basic blocks (strides 1, 2, 2) with 1x1/2
projection shortcuts, global average pool, linear head. Batch norm is in inference form (a
per-channel affine map). ``params_from_torch`` copies a PyTorch SmallResNet's weights so both
frameworks compute the same function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Params = dict[str, Any]
DIMS = ("NCHW", "OIHW", "NCHW")


def conv(x: jax.Array, w: jax.Array, stride: int = 1, pad: int = 0) -> jax.Array:
    return lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                    dimension_numbers=DIMS)


def affine(x: jax.Array, p: Params) -> jax.Array:
    """Inference-mode batch norm folded into scale and shift per channel."""
    return x * p["scale"][None, :, None, None] + p["shift"][None, :, None, None]


def basic_block(x: jax.Array, p: Params, stride: int) -> jax.Array:
    y = jax.nn.relu(affine(conv(x, p["conv1"], stride, 1), p["bn1"]))
    y = affine(conv(y, p["conv2"], 1, 1), p["bn2"])
    shortcut = x if "down" not in p else affine(conv(x, p["down"], stride, 0), p["down_bn"])
    return jax.nn.relu(y + shortcut)


STRIDES = (1, 2, 2)


def small_resnet_features(params: Params, x: jax.Array) -> jax.Array:
    """The layer3 feature map (the quickstart's end-point)."""
    with jax.named_scope("stem"):
        x = jax.nn.relu(affine(conv(x, params["stem"], 2, 1), params["stem_bn"]))
    for i, stride in enumerate(STRIDES):
        with jax.named_scope(f"layer{i + 1}"):  # module paths as in the PyTorch net
            x = basic_block(x, params[f"layer{i + 1}"][0], stride)
            x = basic_block(x, params[f"layer{i + 1}"][1], 1)
    return x


def small_resnet_apply(params: Params, x: jax.Array) -> jax.Array:
    x = small_resnet_features(params, x)
    return x.mean(axis=(2, 3)) @ params["fc"]["w"] + params["fc"]["b"]


def small_resnet_params(widths=(16, 32, 64), num_classes: int = 10, seed: int = 0) -> Params:
    rng = np.random.default_rng(seed)

    def w(cout, cin, k):
        return jnp.asarray(rng.normal(0, (2 / (cin * k * k)) ** 0.5, (cout, cin, k, k)),
                           jnp.float32)

    def bn(c):
        return {"scale": jnp.ones(c, jnp.float32), "shift": jnp.zeros(c, jnp.float32)}

    params: Params = {"stem": w(widths[0], 3, 3), "stem_bn": bn(widths[0])}
    cin = widths[0]
    for i, width in enumerate(widths):
        blocks = []
        for j in range(2):
            stride = STRIDES[i] if j == 0 else 1
            b = {"conv1": w(width, cin, 3), "bn1": bn(width), "conv2": w(width, width, 3),
                 "bn2": bn(width)}
            if stride != 1 or cin != width:
                b["down"], b["down_bn"] = w(width, cin, 1), bn(width)
            blocks.append(b)
            cin = width
        params[f"layer{i + 1}"] = blocks
    params["fc"] = {"w": jnp.asarray(rng.normal(0, cin ** -0.5, (cin, num_classes)),
                                     jnp.float32), "b": jnp.zeros(num_classes, jnp.float32)}
    return params


def small_resnet() -> tuple:
    """The zoo factory: ``(apply, params)``, input layout NCHW, with the weights of the zoo's
    PyTorch ``small_resnet`` (same seed): both frameworks compute the same function."""
    from experiments.models.modern import small_resnet as torch_small_resnet
    return small_resnet_apply, params_from_torch(torch_small_resnet())


def small_resnet_layer3() -> tuple:
    """``(features, params)``: the quickstart net up to layer3 (NCHW), with the weights of the
    zoo's PyTorch ``small_resnet`` (same seed), so both frameworks compute the same function."""
    from experiments.models.modern import small_resnet as torch_small_resnet
    return small_resnet_features, params_from_torch(torch_small_resnet())


def params_from_torch(model) -> Params:
    """Copy a PyTorch SmallResNet's weights (eval-mode batch norm folded) into JAX params."""
    def arr(t):
        return jnp.asarray(t.detach().cpu().numpy())

    def bn(m):
        scale = m.weight / (m.running_var + m.eps).sqrt()
        return {"scale": arr(scale), "shift": arr(m.bias - m.running_mean * scale)}

    params: Params = {"stem": arr(model.stem[0].weight), "stem_bn": bn(model.stem[1])}
    for i in range(len(STRIDES)):
        blocks = []
        for block in getattr(model, f"layer{i + 1}"):
            b = {"conv1": arr(block.conv1.weight), "bn1": bn(block.bn1),
                 "conv2": arr(block.conv2.weight), "bn2": bn(block.bn2)}
            if block.downsample is not None:
                b["down"], b["down_bn"] = arr(block.downsample[0].weight), bn(block.downsample[1])
            blocks.append(b)
        params[f"layer{i + 1}"] = blocks
    params["fc"] = {"w": arr(model.fc.weight.T), "b": arr(model.fc.bias)}
    return params
