"""inception_v2 as TF-slim builds it (nets/inception_v2.py, inception_utils.inception_arg_scope).

Everything is 'SAME' with stride 1 unless given. ``Conv2d_1a_7x7`` is a separable 7x7 stride-2
convolution whose depthwise step has channel multiplier ``min(int(depth(64) / 3), 8)`` (8);
inception_arg_scope covers only slim.conv2d, so it keeps separable_conv2d's own defaults: bias
and ReLU, no batch norm. With ``use_separable_conv=False`` it is an ordinary 7x7 conv2d.
Convolutions: batch norm (eps 1e-3, no gamma) and ReLU. Head: ``Logits`` = 7x7 'VALID'
average pool (shrunk for small inputs), dropout, 1x1 conv, squeeze.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import (
    ArgScope,
    AvgPool2d,
    BatchNormArgs,
    Block,
    MaxPool2d,
    ReducedAvgPool,
    SeparableConv,
    SpatialSqueeze,
    depth_fn,
)

SCOPE = ArgScope(BatchNormArgs(eps=1e-3, decay=0.9997, scale=False))

ENDPOINTS = ("Conv2d_1a_7x7", "MaxPool_2a_3x3", "Conv2d_2b_1x1", "Conv2d_2c_3x3",
             "MaxPool_3a_3x3", "Mixed_3b", "Mixed_3c", "Mixed_4a", "Mixed_4b", "Mixed_4c",
             "Mixed_4d", "Mixed_4e", "Mixed_5a", "Mixed_5b", "Mixed_5c")

# Mixed blocks with four branches: 1x1 | 1x1, 3x3 | 1x1, 3x3, 3x3 | pool 3x3, 1x1.
# (b0, b1a, b1b, b2a, b2b, pool, b3) channels; pool 'avg' or 'max'.
MIXED = {
    "Mixed_3b": (64, 64, 64, 64, 96, "avg", 32),
    "Mixed_3c": (64, 64, 96, 64, 96, "avg", 64),
    "Mixed_4b": (224, 64, 96, 96, 128, "avg", 128),
    "Mixed_4c": (192, 96, 128, 96, 128, "avg", 128),
    "Mixed_4d": (160, 128, 160, 128, 160, "avg", 96),
    "Mixed_4e": (96, 128, 192, 160, 192, "avg", 96),
    "Mixed_5b": (352, 192, 320, 160, 224, "avg", 128),
    "Mixed_5c": (352, 192, 320, 192, 224, "max", 128),
}
# Reduction blocks: 1x1, 3x3/2 | 1x1, 3x3, 3x3/2 | max pool 3x3/2 (all 'SAME').
REDUCTION = {"Mixed_4a": (128, 160, 64, 96), "Mixed_5a": (128, 192, 192, 256)}


def mixed(c: int, spec: tuple, depth) -> Block:
    b0, b1a, b1b, b2a, b2b, pool, b3 = spec
    conv = SCOPE.conv
    pool_layer = (AvgPool2d(3, 1, padding="SAME") if pool == "avg"
                  else MaxPool2d(3, 1, padding="SAME"))
    pool_name = "AvgPool_0a_3x3" if pool == "avg" else "MaxPool_0a_3x3"
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, depth(b0), 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, depth(b1a), 1),
                              "Conv2d_0b_3x3": conv(depth(b1a), depth(b1b), 3)}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, depth(b2a), 1),
                              "Conv2d_0b_3x3": conv(depth(b2a), depth(b2b), 3),
                              "Conv2d_0c_3x3": conv(depth(b2b), depth(b2b), 3)}),
        "Branch_3": Block(c, {pool_name: pool_layer,
                              "Conv2d_0b_1x1": conv(c, depth(b3), 1)}),
    }, parallel=4)


def reduction(c: int, spec: tuple, depth) -> Block:
    b0a, b0b, b1a, b1b = spec
    conv = SCOPE.conv
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, depth(b0a), 1),
                              "Conv2d_1a_3x3": conv(depth(b0a), depth(b0b), 3, 2)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, depth(b1a), 1),
                              "Conv2d_0b_3x3": conv(depth(b1a), depth(b1b), 3),
                              "Conv2d_1a_3x3": conv(depth(b1b), depth(b1b), 3, 2)}),
        "Branch_2": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding="SAME")}),
    }, parallel=3)


def inception_v2(num_classes: int = 1000, depth_multiplier: float = 1.0, min_depth: int = 16,
                 use_separable_conv: bool = True,
                 dropout_keep_prob: float = 0.8) -> nn.Sequential:
    """Inception v2 up to squeezed logits; ``Mixed_5c`` is the last spatial end-point."""
    depth = depth_fn(depth_multiplier, min_depth)
    conv = SCOPE.conv
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if use_separable_conv:
        multiplier = min(int(depth(64) / 3), 8)
        layers["Conv2d_1a_7x7"] = SeparableConv(3, depth(64), 7, 2, multiplier=multiplier)
    else:
        layers["Conv2d_1a_7x7"] = conv(3, depth(64), 7, 2)
    layers["MaxPool_2a_3x3"] = MaxPool2d(3, 2, padding="SAME")
    layers["Conv2d_2b_1x1"] = conv(depth(64), depth(64), 1)
    layers["Conv2d_2c_3x3"] = conv(depth(64), depth(192), 3)
    layers["MaxPool_3a_3x3"] = MaxPool2d(3, 2, padding="SAME")
    c = depth(192)
    for name in ENDPOINTS[5:]:
        block = (reduction(c, REDUCTION[name], depth) if name in REDUCTION
                 else mixed(c, MIXED[name], depth))
        layers[name] = block
        c = block.out_channels
    layers["Logits"] = nn.Sequential(OrderedDict(
        AvgPool_1a_7x7=ReducedAvgPool(7),
        Dropout_1b=nn.Dropout(1.0 - dropout_keep_prob),
        Conv2d_1c_1x1=conv(c, num_classes, 1, normalize=False, activate=False),
        SpatialSqueeze=SpatialSqueeze(),
    ))
    return nn.Sequential(layers).eval()
