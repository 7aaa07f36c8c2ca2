"""inception_v3 as TF-slim builds it (nets/inception_v3.py, inception_utils.inception_arg_scope).

The stem (up to ``MaxPool_5a_3x3``) is 'VALID' with stride 1 unless given, except
``Conv2d_2b_3x3`` ('SAME'); the Mixed blocks are 'SAME' except their stride-2 layers ('VALID').
So no padding of this net depends on the input size. Convolutions: batch norm (eps 1e-3, no
gamma) and ReLU. slim's branch-layer names are kept, including its irregular ones
(``Mixed_5c/Branch_1/Conv_1_0c_5x5``, ``Mixed_6a/Branch_0/Conv2d_1a_1x1`` for a 3x3).
Head: ``Logits`` = 8x8 'VALID' average pool (shrunk for small inputs), dropout, 1x1 conv,
squeeze. The training-only auxiliary head on Mixed_6e is left out.
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
    SpatialSqueeze,
    depth_fn,
)

SCOPE = ArgScope(BatchNormArgs(eps=1e-3, decay=0.9997, scale=False))

ENDPOINTS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3",
             "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_5a_3x3", "Mixed_5b", "Mixed_5c",
             "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
             "Mixed_7a", "Mixed_7b", "Mixed_7c")


def avg_pool_branch(c: int, out: int) -> Block:
    return Block(c, {"AvgPool_0a_3x3": AvgPool2d(3, 1, padding="SAME"),
                     "Conv2d_0b_1x1": SCOPE.conv(c, out, 1)})


def mixed_5(c: int, pool_out: int, branch_1_names: tuple[str, str], depth) -> Block:
    """35x35 block: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool, 1x1."""
    conv = SCOPE.conv
    b1a, b1b = branch_1_names
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, depth(64), 1)}),
        "Branch_1": Block(c, {b1a: conv(c, depth(48), 1),
                              b1b: conv(depth(48), depth(64), 5)}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, depth(64), 1),
                              "Conv2d_0b_3x3": conv(depth(64), depth(96), 3),
                              "Conv2d_0c_3x3": conv(depth(96), depth(96), 3)}),
        "Branch_3": avg_pool_branch(c, depth(pool_out)),
    }, parallel=4)


def mixed_6a(c: int, depth) -> Block:
    conv = SCOPE.conv
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_1a_1x1": conv(c, depth(384), 3, 2, padding="VALID")}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, depth(64), 1),
                              "Conv2d_0b_3x3": conv(depth(64), depth(96), 3),
                              "Conv2d_1a_1x1": conv(depth(96), depth(96), 3, 2,
                                                    padding="VALID")}),
        "Branch_2": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding="VALID")}),
    }, parallel=3)


def mixed_6(c: int, mid: int, depth) -> Block:
    """17x17 block with factorized 7x7s: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | pool."""
    conv = SCOPE.conv
    m, o = depth(mid), depth(192)
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, o, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, m, 1),
                              "Conv2d_0b_1x7": conv(m, m, (1, 7)),
                              "Conv2d_0c_7x1": conv(m, o, (7, 1))}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, m, 1),
                              "Conv2d_0b_7x1": conv(m, m, (7, 1)),
                              "Conv2d_0c_1x7": conv(m, m, (1, 7)),
                              "Conv2d_0d_7x1": conv(m, m, (7, 1)),
                              "Conv2d_0e_1x7": conv(m, o, (1, 7))}),
        "Branch_3": avg_pool_branch(c, o),
    }, parallel=4)


def mixed_7a(c: int, depth) -> Block:
    conv = SCOPE.conv
    d = depth(192)
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, d, 1),
                              "Conv2d_1a_3x3": conv(d, depth(320), 3, 2, padding="VALID")}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, d, 1),
                              "Conv2d_0b_1x7": conv(d, d, (1, 7)),
                              "Conv2d_0c_7x1": conv(d, d, (7, 1)),
                              "Conv2d_1a_3x3": conv(d, d, 3, 2, padding="VALID")}),
        "Branch_2": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding="VALID")}),
    }, parallel=3)


def mixed_7(c: int, branch_1_3x1: str, depth) -> Block:
    """8x8 block: 1x1 | 1x1, [1x3, 3x1] | 1x1, 3x3, [1x3, 3x1] | avg pool, 1x1."""
    conv = SCOPE.conv
    d = depth(384)
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, depth(320), 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, d, 1),
                              "Conv2d_0b_1x3": conv(d, d, (1, 3)),
                              branch_1_3x1: conv(d, d, (3, 1))}, parallel=2),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, depth(448), 1),
                              "Conv2d_0b_3x3": conv(depth(448), d, 3),
                              "Conv2d_0c_1x3": conv(d, d, (1, 3)),
                              "Conv2d_0d_3x1": conv(d, d, (3, 1))}, parallel=2),
        "Branch_3": avg_pool_branch(c, depth(192)),
    }, parallel=4)


def inception_v3(num_classes: int = 1000, depth_multiplier: float = 1.0, min_depth: int = 16,
                 dropout_keep_prob: float = 0.8) -> nn.Sequential:
    """Inception v3 up to squeezed logits; ``Mixed_7c`` is the last spatial end-point."""
    depth = depth_fn(depth_multiplier, min_depth)
    conv = SCOPE.conv
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        Conv2d_1a_3x3=conv(3, depth(32), 3, 2, padding="VALID"),
        Conv2d_2a_3x3=conv(depth(32), depth(32), 3, padding="VALID"),
        Conv2d_2b_3x3=conv(depth(32), depth(64), 3, padding="SAME"),
        MaxPool_3a_3x3=MaxPool2d(3, 2, padding="VALID"),
        Conv2d_3b_1x1=conv(depth(64), depth(80), 1, padding="VALID"),
        Conv2d_4a_3x3=conv(depth(80), depth(192), 3, padding="VALID"),
        MaxPool_5a_3x3=MaxPool2d(3, 2, padding="VALID"),
    )
    c = depth(192)
    blocks = [
        ("Mixed_5b", lambda c: mixed_5(c, 32, ("Conv2d_0a_1x1", "Conv2d_0b_5x5"), depth)),
        ("Mixed_5c", lambda c: mixed_5(c, 64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5"), depth)),
        ("Mixed_5d", lambda c: mixed_5(c, 64, ("Conv2d_0a_1x1", "Conv2d_0b_5x5"), depth)),
        ("Mixed_6a", lambda c: mixed_6a(c, depth)),
        ("Mixed_6b", lambda c: mixed_6(c, 128, depth)),
        ("Mixed_6c", lambda c: mixed_6(c, 160, depth)),
        ("Mixed_6d", lambda c: mixed_6(c, 160, depth)),
        ("Mixed_6e", lambda c: mixed_6(c, 192, depth)),
        ("Mixed_7a", lambda c: mixed_7a(c, depth)),
        ("Mixed_7b", lambda c: mixed_7(c, "Conv2d_0b_3x1", depth)),
        ("Mixed_7c", lambda c: mixed_7(c, "Conv2d_0c_3x1", depth)),
    ]
    for name, build in blocks:
        layers[name] = build(c)
        c = layers[name].out_channels
    layers["Logits"] = nn.Sequential(OrderedDict(
        AvgPool_1a_8x8=ReducedAvgPool(8),
        Dropout_1b=nn.Dropout(1.0 - dropout_keep_prob),
        Conv2d_1c_1x1=conv(c, num_classes, 1, normalize=False, activate=False),
        SpatialSqueeze=SpatialSqueeze(),
    ))
    return nn.Sequential(layers).eval()
