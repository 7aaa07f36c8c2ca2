"""inception_resnet_v2 as TF-slim builds it (nets/inception_resnet_v2.py, output_stride 16).

'SAME' with stride 1 unless given; the stem and every stride-2 layer use ``padding``, which
is 'VALID' unless ``align_feature_maps=True`` ('SAME'). Convolutions: batch norm (eps 1e-3,
no gamma) and ReLU. Residual blocks (block35 x 10, block17 x 20, block8 x 9 plus a last one
without activation) add ``scale * Conv2d_1x1(concat(branches))`` (1x1 with bias, no BN or
ReLU) to their input, then ReLU. Module paths follow slim's scopes (``Repeat/block35_1``,
``Repeat_2/block8_9``, ``Block8``), except that the 20 block17s, slim's ``Repeat_1``, are
named after their end-point ``PreAuxLogits``. Head: ``Logits`` = average pool over the whole
map, flatten, dropout, fully connected. The auxiliary head is left out.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import ArgScope, AvgPool2d, BatchNormArgs, Block, GlobalAvgPool, MaxPool2d

SCOPE = ArgScope(BatchNormArgs(eps=1e-3, decay=0.9997, scale=False))
conv = SCOPE.conv

ENDPOINTS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3",
             "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_5a_3x3", "Mixed_5b", "Mixed_6a",
             "PreAuxLogits", "Mixed_7a", "Conv2d_7b_1x1")


class Residual(nn.Module):
    """block35 / block17 / block8: ``act(x + scale * Conv2d_1x1(concat(branches(x))))``."""

    def __init__(self, c: int, branches: dict[str, Block], scale: float, activate: bool) -> None:
        super().__init__()
        for name, branch in branches.items():
            self.add_module(name, branch)
        self.names = tuple(branches)
        mixed = sum(b.out_channels for b in branches.values())
        self.Conv2d_1x1 = conv(mixed, c, 1, normalize=False, activate=False)
        self.scale = scale
        self.act = nn.ReLU() if activate else None
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([getattr(self, name)(x) for name in self.names], dim=1)
        x = x + self.scale * self.Conv2d_1x1(mixed)
        return self.act(x) if self.act is not None else x

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def block35(c: int, scale: float = 0.17, activate: bool = True) -> Residual:
    return Residual(c, {
        "Branch_0": Block(c, {"Conv2d_1x1": conv(c, 32, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 32, 1),
                              "Conv2d_0b_3x3": conv(32, 32, 3)}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, 32, 1),
                              "Conv2d_0b_3x3": conv(32, 48, 3),
                              "Conv2d_0c_3x3": conv(48, 64, 3)}),
    }, scale, activate)


def block17(c: int, scale: float = 0.10, activate: bool = True) -> Residual:
    return Residual(c, {
        "Branch_0": Block(c, {"Conv2d_1x1": conv(c, 192, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 128, 1),
                              "Conv2d_0b_1x7": conv(128, 160, (1, 7)),
                              "Conv2d_0c_7x1": conv(160, 192, (7, 1))}),
    }, scale, activate)


def block8(c: int, scale: float = 0.20, activate: bool = True) -> Residual:
    return Residual(c, {
        "Branch_0": Block(c, {"Conv2d_1x1": conv(c, 192, 1)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 192, 1),
                              "Conv2d_0b_1x3": conv(192, 224, (1, 3)),
                              "Conv2d_0c_3x1": conv(224, 256, (3, 1))}),
    }, scale, activate)


def repeat(n: int, build, name: str, c: int) -> nn.Sequential:
    """slim.repeat: scopes ``{name}_1`` ... ``{name}_{n}``."""
    return nn.Sequential(OrderedDict((f"{name}_{i}", build(c)) for i in range(1, n + 1)))


def inception_resnet_v2(num_classes: int = 1000, dropout_keep_prob: float = 0.8,
                        align_feature_maps: bool = False) -> nn.Sequential:
    """Inception-ResNet v2 up to logits; ``Conv2d_7b_1x1`` is the last spatial end-point."""
    pad = "SAME" if align_feature_maps else "VALID"
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        Conv2d_1a_3x3=conv(3, 32, 3, 2, padding=pad),
        Conv2d_2a_3x3=conv(32, 32, 3, padding=pad),
        Conv2d_2b_3x3=conv(32, 64, 3),
        MaxPool_3a_3x3=MaxPool2d(3, 2, padding=pad),
        Conv2d_3b_1x1=conv(64, 80, 1, padding=pad),
        Conv2d_4a_3x3=conv(80, 192, 3, padding=pad),
        MaxPool_5a_3x3=MaxPool2d(3, 2, padding=pad),
        Mixed_5b=Block(192, {
            "Branch_0": Block(192, {"Conv2d_1x1": conv(192, 96, 1)}),
            "Branch_1": Block(192, {"Conv2d_0a_1x1": conv(192, 48, 1),
                                    "Conv2d_0b_5x5": conv(48, 64, 5)}),
            "Branch_2": Block(192, {"Conv2d_0a_1x1": conv(192, 64, 1),
                                    "Conv2d_0b_3x3": conv(64, 96, 3),
                                    "Conv2d_0c_3x3": conv(96, 96, 3)}),
            "Branch_3": Block(192, {"AvgPool_0a_3x3": AvgPool2d(3, 1, padding="SAME"),
                                    "Conv2d_0b_1x1": conv(192, 64, 1)}),
        }, parallel=4),
    )
    c = 320
    layers["Repeat"] = repeat(10, block35, "block35", c)
    layers["Mixed_6a"] = Block(c, {
        "Branch_0": Block(c, {"Conv2d_1a_3x3": conv(c, 384, 3, 2, padding=pad)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 256, 1),
                              "Conv2d_0b_3x3": conv(256, 256, 3),
                              "Conv2d_1a_3x3": conv(256, 384, 3, 2, padding=pad)}),
        "Branch_2": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding=pad)}),
    }, parallel=3)
    c = layers["Mixed_6a"].out_channels  # 1088
    layers["PreAuxLogits"] = repeat(20, block17, "block17", c)
    layers["Mixed_7a"] = Block(c, {
        "Branch_0": Block(c, {"Conv2d_0a_1x1": conv(c, 256, 1),
                              "Conv2d_1a_3x3": conv(256, 384, 3, 2, padding=pad)}),
        "Branch_1": Block(c, {"Conv2d_0a_1x1": conv(c, 256, 1),
                              "Conv2d_1a_3x3": conv(256, 288, 3, 2, padding=pad)}),
        "Branch_2": Block(c, {"Conv2d_0a_1x1": conv(c, 256, 1),
                              "Conv2d_0b_3x3": conv(256, 288, 3),
                              "Conv2d_1a_3x3": conv(288, 320, 3, 2, padding=pad)}),
        "Branch_3": Block(c, {"MaxPool_1a_3x3": MaxPool2d(3, 2, padding=pad)}),
    }, parallel=4)
    c = layers["Mixed_7a"].out_channels  # 2080
    layers["Repeat_2"] = repeat(9, block8, "block8", c)
    layers["Block8"] = block8(c, scale=1.0, activate=False)
    layers["Conv2d_7b_1x1"] = conv(c, 1536, 1)
    layers["Logits"] = nn.Sequential(OrderedDict(
        AvgPool_1a_8x8=GlobalAvgPool(),
        PreLogitsFlatten=nn.Flatten(),
        Dropout=nn.Dropout(1.0 - dropout_keep_prob),
        Logits=nn.Linear(1536, num_classes),
    ))
    return nn.Sequential(layers).eval()
