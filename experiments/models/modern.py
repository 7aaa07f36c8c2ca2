"""Modern architectures in PyTorch for ERF-vs-theory studies: real layer geometry, random init.

Widths are parameters (``width`` scales every stage) so the same geometry runs small on a CPU;
kernel sizes, strides, dilations and paddings are the published ones:
- ``convnext_t``: Liu et al. 2022, ConvNeXt-T (4x4/4 stem, 7x7 depthwise blocks, depths 3-3-9-3).
- ``replknet_31b``: Ding et al. 2022, RepLKNet-31B (31-29-27-13 depthwise kernels with a
  parallel 5x5, depths 2-2-18-2), re-parameterisation not applied (the 5x5 branch is explicit).
- ``small_resnet``: the quickstart net, a ResNet with basic blocks (3 stages, 1x1/2 shortcuts).
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of an NCHW tensor (ConvNeXt's channels_first variant)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        # layer scale: the paper initialises it to 1e-6, which would hide the branch in a
        # random-init ERF; 1 keeps the branch visible (geometry is unchanged)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # NHWC: norm and linears act on channels
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), in_chans: int = 3,
                 num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        self.stages = nn.ModuleList()
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers: list[nn.Module] = []
            if i > 0:
                layers += [LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, stride=2)]
            layers += [ConvNeXtBlock(dim) for _ in range(depth)]
            self.stages.append(nn.Sequential(*layers))
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))


def convnext_t(width: float = 1.0) -> ConvNeXt:
    return ConvNeXt(dims=tuple(max(8, int(d * width)) for d in (96, 192, 384, 768)))


class RepLKBlock(nn.Module):
    """BN -> 1x1 -> ReLU -> (KxK depthwise + 5x5 depthwise) -> ReLU -> 1x1, residual."""

    def __init__(self, dim: int, kernel: int, small_kernel: int = 5):
        super().__init__()
        self.prelkb_bn = nn.BatchNorm2d(dim)
        self.pw1 = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim), nn.ReLU())
        self.large = nn.Sequential(nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim),
                                   nn.BatchNorm2d(dim))
        self.small = nn.Sequential(
            nn.Conv2d(dim, dim, small_kernel, padding=small_kernel // 2, groups=dim),
            nn.BatchNorm2d(dim))
        self.act = nn.ReLU()
        self.pw2 = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw1(self.prelkb_bn(x))
        y = self.act(self.large(y) + self.small(y))
        return x + self.pw2(y)


class ConvFFN(nn.Module):
    def __init__(self, dim: int, ratio: int = 4):
        super().__init__()
        self.preffn_bn = nn.BatchNorm2d(dim)
        self.pw1 = nn.Sequential(nn.Conv2d(dim, dim * ratio, 1), nn.BatchNorm2d(dim * ratio))
        self.act = nn.GELU()
        self.pw2 = nn.Sequential(nn.Conv2d(dim * ratio, dim, 1), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.act(self.pw1(self.preffn_bn(x))))


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups),
                         nn.BatchNorm2d(cout), nn.ReLU())


class RepLKNet(nn.Module):
    def __init__(self, kernels=(31, 29, 27, 13), depths=(2, 2, 18, 2),
                 channels=(128, 256, 512, 1024), in_chans: int = 3, num_classes: int = 1000):
        super().__init__()
        c0 = channels[0]
        self.stem = nn.Sequential(_conv_bn_relu(in_chans, c0, 3, 2),
                                  _conv_bn_relu(c0, c0, 3, 1, groups=c0),
                                  _conv_bn_relu(c0, c0, 1),
                                  _conv_bn_relu(c0, c0, 3, 2, groups=c0))
        self.stages = nn.ModuleList()
        for i, (k, depth, c) in enumerate(zip(kernels, depths, channels)):
            layers: list[nn.Module] = []
            if i > 0:  # transition: 1x1 then a stride-2 3x3 depthwise
                layers += [_conv_bn_relu(channels[i - 1], c, 1), _conv_bn_relu(c, c, 3, 2, c)]
            for _ in range(depth):
                layers += [RepLKBlock(c, k), ConvFFN(c)]
            self.stages.append(nn.Sequential(*layers))
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))


def replknet_31b(width: float = 1.0, depths=(2, 2, 18, 2)) -> RepLKNet:
    return RepLKNet(depths=depths,
                    channels=tuple(max(8, int(c * width)) for c in (128, 256, 512, 1024)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


class SmallResNet(nn.Module):
    """3x3/2 stem, three stages of two basic blocks (strides 1, 2, 2), global pool, linear."""

    def __init__(self, widths=(16, 32, 64), num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        cin = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride),
                                                         BasicBlock(w, w, 1)))
            cin = w
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))


def small_resnet(seed: int = 0) -> SmallResNet:
    """The quickstart net with PyTorch's default initialisation drawn from ``seed``."""
    torch.manual_seed(seed)
    return SmallResNet().eval()
