"""mobilenet_v1 as TF-slim builds it (nets/mobilenet_v1.py), with its depth multiplier.

Arg scope: conv2d and separable_conv2d 'SAME', batch norm (eps 1e-3, with gamma) and ReLU6.
Layer 0 is a 3x3 stride-2 convolution; layers 1..13 are a 3x3 depthwise convolution
(``Conv2d_i_depthwise``) then a 1x1 convolution (``Conv2d_i_pointwise``). Channels are
``max(int(d * depth_multiplier), min_depth)``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import ArgScope, BatchNormArgs, ReducedAvgPool, SpatialSqueeze, depth_fn

SCOPE = ArgScope(BatchNormArgs(eps=1e-3, decay=0.9997, scale=True), activation=nn.ReLU6)

# (stride, depth) of layers 0..13; layer 0 is a full convolution, the others separable.
CONV_DEFS = ((2, 32), (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
             (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))

ENDPOINTS = ("Conv2d_0",) + tuple(
    f"Conv2d_{i}_{part}" for i in range(1, 14) for part in ("depthwise", "pointwise"))


def mobilenet_v1(num_classes: int = 1000, depth_multiplier: float = 1.0, min_depth: int = 8,
                 dropout_keep_prob: float = 0.999) -> nn.Sequential:
    """MobileNet v1 up to squeezed logits; ``Conv2d_13_pointwise`` is the last spatial one."""
    depth = depth_fn(depth_multiplier, min_depth)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    stride, d = CONV_DEFS[0]
    layers["Conv2d_0"] = SCOPE.conv(3, depth(d), 3, stride)
    c = depth(d)
    for i, (stride, d) in enumerate(CONV_DEFS[1:], start=1):
        layers[f"Conv2d_{i}_depthwise"] = SCOPE.conv(c, c, 3, stride, groups=c)
        layers[f"Conv2d_{i}_pointwise"] = SCOPE.conv(c, depth(d), 1)
        c = depth(d)
    layers["Logits"] = nn.Sequential(OrderedDict(
        AvgPool_1a=ReducedAvgPool(7),
        Dropout_1b=nn.Dropout(1.0 - dropout_keep_prob),
        Conv2d_1c_1x1=SCOPE.conv(c, num_classes, 1, normalize=False, activate=False),
        SpatialSqueeze=SpatialSqueeze(),
    ))
    return nn.Sequential(layers).eval()


def mobilenet_v1_075(num_classes: int = 1000, dropout_keep_prob: float = 0.999) -> nn.Sequential:
    """MobileNet v1 with depth multiplier 0.75."""
    return mobilenet_v1(num_classes, depth_multiplier=0.75, dropout_keep_prob=dropout_keep_prob)
