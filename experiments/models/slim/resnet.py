"""resnet_v1_* and resnet_v2_* (50/101/152/200) as TF-slim builds them.

Facts from nets/resnet_utils.py, resnet_v1.py, resnet_v2.py:
- arg scope: conv2d 'SAME' with batch norm (eps 1e-5, with gamma) and ReLU; max_pool2d 'SAME'.
- root: ``conv1`` = conv2d_same 7x7 stride 2, i.e. explicit padding (3, 3) then 'VALID'
  (v2: no batch norm, no activation, bias); ``pool1`` = 3x3 stride 2 max pool, 'SAME'.
- bottleneck units; each block's stride sits in its LAST unit (block4 has stride 1). The
  strided 3x3 ``conv2`` is conv2d_same (explicit (1, 1) padding, 'VALID'); the shortcut is a
  1x1 convolution when the depth changes, else ``subsample`` (1x1 max pool with the unit's
  stride, 'SAME', which pads nothing).
- v1 unit: relu(shortcut + conv3(conv2(conv1(x)))), conv3 and the projection without ReLU.
- v2 unit: ``preact`` = BN + ReLU; projection and conv3 read it with bias, no BN/ReLU; an
  identity shortcut takes the unit's input. ``postnorm`` (BN + ReLU) follows block4.
- head: ``global_pool`` (spatial mean), ``logits`` 1x1 conv with bias, squeeze.
Module paths: ``conv1``, ``pool1``, ``block1`` ... ``block4``, units ``block1.unit_1``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import (
    ArgScope,
    BatchNorm,
    BatchNormArgs,
    GlobalAvgPool,
    MaxPool2d,
    SlimConv,
    SpatialSqueeze,
    fixed_pad,
)

BN = BatchNormArgs(eps=1e-5, decay=0.997, scale=True)
SCOPE = ArgScope(BN)

# units per block for each depth; base depths 64, 128, 256, 512; block strides 2, 2, 2, 1
UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
BASE_DEPTHS = (64, 128, 256, 512)
BLOCK_STRIDES = (2, 2, 2, 1)

ENDPOINTS = ("conv1", "pool1", "block1", "block2", "block3", "block4")


def conv2d_same(scope: ArgScope, cin: int, cout: int, kernel: int, stride: int,
                **kwargs) -> SlimConv:
    """resnet_utils.conv2d_same: 'SAME' at stride 1, else explicit padding then 'VALID'."""
    padding = "SAME" if stride == 1 else fixed_pad(kernel)
    return scope.conv(cin, cout, kernel, stride, padding=padding, **kwargs)


def subsample(stride: int) -> nn.Module:
    """resnet_utils.subsample: the input itself, or a 1x1 max pool with the stride ('SAME')."""
    return nn.Identity() if stride == 1 else MaxPool2d(1, stride, padding="SAME")


class BottleneckV1(nn.Module):
    """resnet_v1.bottleneck: BN after every convolution, ReLU after the addition."""

    def __init__(self, cin: int, depth: int, bottleneck: int, stride: int) -> None:
        super().__init__()
        if depth == cin:
            self.shortcut = subsample(stride)
        else:
            self.shortcut = SCOPE.conv(cin, depth, 1, stride, activate=False)
        self.conv1 = SCOPE.conv(cin, bottleneck, 1)
        self.conv2 = conv2d_same(SCOPE, bottleneck, bottleneck, 3, stride)
        self.conv3 = SCOPE.conv(bottleneck, depth, 1, activate=False)
        self.relu = nn.ReLU()
        self.out_channels = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.conv3(self.conv2(self.conv1(x))))


class BottleneckV2(nn.Module):
    """resnet_v2.bottleneck: full pre-activation, no BN or ReLU after the addition."""

    def __init__(self, cin: int, depth: int, bottleneck: int, stride: int) -> None:
        super().__init__()
        self.preact = nn.Sequential(OrderedDict(
            bn=BatchNorm(cin, eps=BN.eps, decay=BN.decay, scale=BN.scale), act=nn.ReLU()))
        self.project = depth != cin
        if self.project:
            self.shortcut = SCOPE.conv(cin, depth, 1, stride, normalize=False, activate=False)
        else:
            self.shortcut = subsample(stride)
        self.conv1 = SCOPE.conv(cin, bottleneck, 1)
        self.conv2 = conv2d_same(SCOPE, bottleneck, bottleneck, 3, stride)
        self.conv3 = SCOPE.conv(bottleneck, depth, 1, normalize=False, activate=False)
        self.out_channels = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.preact(x)
        shortcut = self.shortcut(preact if self.project else x)
        return shortcut + self.conv3(self.conv2(self.conv1(preact)))


def resnet(version: int, depth: int, num_classes: int = 1000) -> nn.Sequential:
    if depth not in UNITS:
        raise ValueError(f"resnet depth must be one of {sorted(UNITS)}, got {depth}")
    unit = {1: BottleneckV1, 2: BottleneckV2}[version]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if version == 1:
        layers["conv1"] = conv2d_same(SCOPE, 3, 64, 7, 2)
    else:
        layers["conv1"] = conv2d_same(SCOPE, 3, 64, 7, 2, normalize=False, activate=False)
    layers["pool1"] = MaxPool2d(3, 2, padding="SAME")
    c = 64
    blocks = zip(UNITS[depth], BASE_DEPTHS, BLOCK_STRIDES, strict=True)
    for b, (n, base, stride) in enumerate(blocks, start=1):
        units = OrderedDict()
        for u in range(1, n + 1):
            units[f"unit_{u}"] = unit(c, base * 4, base, stride if u == n else 1)
            c = base * 4
        layers[f"block{b}"] = nn.Sequential(units)
    if version == 2:
        layers["postnorm"] = nn.Sequential(OrderedDict(
            bn=BatchNorm(c, eps=BN.eps, decay=BN.decay, scale=BN.scale), act=nn.ReLU()))
    layers["global_pool"] = GlobalAvgPool()
    layers["logits"] = SCOPE.conv(c, num_classes, 1, normalize=False, activate=False)
    layers["squeeze"] = SpatialSqueeze()
    return nn.Sequential(layers).eval()


def resnet_v1_50(num_classes: int = 1000) -> nn.Sequential:
    return resnet(1, 50, num_classes)


def resnet_v1_101(num_classes: int = 1000) -> nn.Sequential:
    return resnet(1, 101, num_classes)


def resnet_v1_152(num_classes: int = 1000) -> nn.Sequential:
    return resnet(1, 152, num_classes)


def resnet_v1_200(num_classes: int = 1000) -> nn.Sequential:
    return resnet(1, 200, num_classes)


def resnet_v2_50(num_classes: int = 1000) -> nn.Sequential:
    return resnet(2, 50, num_classes)


def resnet_v2_101(num_classes: int = 1000) -> nn.Sequential:
    return resnet(2, 101, num_classes)


def resnet_v2_152(num_classes: int = 1000) -> nn.Sequential:
    return resnet(2, 152, num_classes)


def resnet_v2_200(num_classes: int = 1000) -> nn.Sequential:
    return resnet(2, 200, num_classes)
