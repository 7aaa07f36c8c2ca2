"""inception_v4 as TF-slim builds it (nets/inception_v4.py, inception_utils.inception_arg_scope).

'SAME' with stride 1 unless given; every stride-2 layer and the stem's first two convolutions
and Mixed_4a's 3x3s are 'VALID', so no padding depends on the input size. Convolutions: batch
norm (eps 1e-3, no gamma) and ReLU. Blocks: Mixed_3a, Mixed_4a, Mixed_5a (stem), 4 x
Inception-A (Mixed_5b..5e), Reduction-A (Mixed_6a), 7 x Inception-B (Mixed_6b..6h),
Reduction-B (Mixed_7a), 3 x Inception-C (Mixed_7b..7d). Head: ``Logits`` = average pool over
the whole map, dropout, flatten, fully connected. The auxiliary head is left out.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import ArgScope, AvgPool2d, BatchNormArgs, Block, GlobalAvgPool, MaxPool2d

SCOPE = ArgScope(BatchNormArgs(eps=1e-3, decay=0.9997, scale=False))

ENDPOINTS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Mixed_3a", "Mixed_4a",
             "Mixed_5a") + tuple(f"Mixed_5{x}" for x in "bcde") + ("Mixed_6a",) + tuple(
    f"Mixed_6{x}" for x in "bcdefgh") + ("Mixed_7a",) + tuple(f"Mixed_7{x}" for x in "bcd")

conv = SCOPE.conv


def pool_branch(c: int, out: int) -> Block:
    return Block(c, {"AvgPool_0a_3x3": AvgPool2d(3, 1, padding="SAME"),
                     "Conv2d_0b_1x1": conv(c, out, 1)})


def inception_a(c: int) -> Block:
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, 96, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 64, 1),
                              "Conv2d_0b_3x3": conv(64, 96, 3)}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, 64, 1),
                              "Conv2d_0b_3x3": conv(64, 96, 3),
                              "Conv2d_0c_3x3": conv(96, 96, 3)}),
        "Branch_3": pool_branch(c, 96),
    }, parallel=4)


def reduction_a(c: int) -> Block:
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_1a_3x3": conv(c, 384, 3, 2, padding="VALID")}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 192, 1),
                              "Conv2d_0b_3x3": conv(192, 224, 3),
                              "Conv2d_1a_3x3": conv(224, 256, 3, 2, padding="VALID")}),
        "Branch_2": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding="VALID")}),
    }, parallel=3)


def inception_b(c: int) -> Block:
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, 384, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 192, 1),
                              "Conv2d_0b_1x7": conv(192, 224, (1, 7)),
                              "Conv2d_0c_7x1": conv(224, 256, (7, 1))}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, 192, 1),
                              "Conv2d_0b_7x1": conv(192, 192, (7, 1)),
                              "Conv2d_0c_1x7": conv(192, 224, (1, 7)),
                              "Conv2d_0d_7x1": conv(224, 224, (7, 1)),
                              "Conv2d_0e_1x7": conv(224, 256, (1, 7))}),
        "Branch_3": pool_branch(c, 128),
    }, parallel=4)


def reduction_b(c: int) -> Block:
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, 192, 1),
                              "Conv2d_1a_3x3": conv(192, 192, 3, 2, padding="VALID")}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 256, 1),
                              "Conv2d_0b_1x7": conv(256, 256, (1, 7)),
                              "Conv2d_0c_7x1": conv(256, 320, (7, 1)),
                              "Conv2d_1a_3x3": conv(320, 320, 3, 2, padding="VALID")}),
        "Branch_2": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding="VALID")}),
    }, parallel=3)


def inception_c(c: int) -> Block:
    return Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, 256, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 384, 1),
                              "Conv2d_0b_1x3": conv(384, 256, (1, 3)),
                              "Conv2d_0c_3x1": conv(384, 256, (3, 1))}, parallel=2),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, 384, 1),
                              "Conv2d_0b_3x1": conv(384, 448, (3, 1)),
                              "Conv2d_0c_1x3": conv(448, 512, (1, 3)),
                              "Conv2d_0d_1x3": conv(512, 256, (1, 3)),
                              "Conv2d_0e_3x1": conv(512, 256, (3, 1))}, parallel=2),
        "Branch_3": pool_branch(c, 256),
    }, parallel=4)


def inception_v4(num_classes: int = 1000, dropout_keep_prob: float = 0.8) -> nn.Sequential:
    """Inception v4 up to logits; ``Mixed_7d`` is the last spatial end-point."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        Conv2d_1a_3x3=conv(3, 32, 3, 2, padding="VALID"),
        Conv2d_2a_3x3=conv(32, 32, 3, padding="VALID"),
        Conv2d_2b_3x3=conv(32, 64, 3),
        Mixed_3a=Block(64, {
            "Branch_0": Block(64, {"MaxPool_0a_3x3": MaxPool2d(3, 2, padding="VALID")}),
            "Branch_1": Block(64, {"Conv2d_0a_3x3": conv(64, 96, 3, 2, padding="VALID")}),
        }, parallel=2),
        Mixed_4a=Block(160, {
            "Branch_0": Block(160, {"Conv2d_0a_1x1": conv(160, 64, 1),
                                    "Conv2d_1a_3x3": conv(64, 96, 3, padding="VALID")}),
            "Branch_1": Block(160, {"Conv2d_0a_1x1": conv(160, 64, 1),
                                    "Conv2d_0b_1x7": conv(64, 64, (1, 7)),
                                    "Conv2d_0c_7x1": conv(64, 64, (7, 1)),
                                    "Conv2d_1a_3x3": conv(64, 96, 3, padding="VALID")}),
        }, parallel=2),
        Mixed_5a=Block(192, {
            "Branch_0": Block(192, {"Conv2d_1a_3x3": conv(192, 192, 3, 2, padding="VALID")}),
            "Branch_1": Block(192, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding="VALID")}),
        }, parallel=2),
    )
    c = 384
    for name in ENDPOINTS[6:]:
        build = {"5": inception_a, "6": inception_b, "7": inception_c}[name[6]]
        if name == "Mixed_6a":
            build = reduction_a
        elif name == "Mixed_7a":
            build = reduction_b
        layers[name] = build(c)
        c = layers[name].out_channels
    layers["Logits"] = nn.Sequential(OrderedDict(
        AvgPool_1a=GlobalAvgPool(),
        Dropout_1b=nn.Dropout(1.0 - dropout_keep_prob),
        PreLogitsFlatten=nn.Flatten(),
        Logits=nn.Linear(c, num_classes),
    ))
    return nn.Sequential(layers).eval()
