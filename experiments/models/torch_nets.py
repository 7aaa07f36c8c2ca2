"""Reference networks in PyTorch (real layer geometry, widths as parameters).

VGG-16 (TF-slim geometry: 3x3 convs with padding 1, 2x2 'VALID' pools), a torchvision-style
ResNet (bottlenecks, 1x1 stride-2 shortcuts), a U-Net (transposed convs, skips), a
DeepLab-style dilated net (output stride 8, ASPP), a MobileNetV2-style net (inverted
residuals, depthwise convs, ReLU6). The frontend tests use them at small widths; the zoo
registers them for ERF studies.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# ---- VGG-16 (TF-slim vgg_16 geometry) ----------------------------------------------------------


class VGG16(nn.Module):
    """conv1..conv5 blocks of 3x3 convs (SAME = padding 1) and 2x2 stride-2 'VALID' pools,
    fc6 a 7x7 VALID conv, fc7/fc8 1x1 convs; module paths as TF-slim scopes (conv3.conv3_2)."""

    BLOCKS = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))

    def __init__(self, width: int = 2, classes: int = 3, fc: bool = True):
        super().__init__()
        cin = 3
        for b, (n, mult) in enumerate(self.BLOCKS, 1):
            layers: dict[str, nn.Module] = {}
            for i in range(1, n + 1):
                layers[f"conv{b}_{i}"] = nn.Conv2d(cin, width * mult, 3, padding=1)
                layers[f"relu{b}_{i}"] = nn.ReLU(inplace=True)
                cin = width * mult
            self.add_module(f"conv{b}", nn.Sequential(OrderedDict(layers)))
            self.add_module(f"pool{b}", nn.MaxPool2d(2, 2))
        self.fc = fc
        if fc:
            self.fc6 = nn.Conv2d(cin, 4 * width, 7)
            self.fc7 = nn.Conv2d(4 * width, 4 * width, 1)
            self.fc8 = nn.Conv2d(4 * width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in range(1, 6):
            x = getattr(self, f"pool{b}")(getattr(self, f"conv{b}")(x))
        if self.fc:
            x = self.fc8(F.relu(self.fc7(F.relu(self.fc6(x)))))
        return x


# ---- ResNet (torchvision style) ----------------------------------------------------------------


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: stride on the 3x3), 1x1 stride-s shortcut with BN."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision ResNet with bottlenecks; ``layers=(3, 4, 6, 3)`` is ResNet-50's geometry,
    ``width=64`` its real widths."""

    def __init__(self, layers=(3, 4, 6, 3), width: int = 4, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(layers):
            planes = width * 2 ** i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, planes, 2 if j == 0 and i > 0 else 1))
                cin = planes * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- U-Net ---------------------------------------------------------------------------------------


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net: 3 downsamplings (max pool 2), transposed-conv (k2, s2) upsampling, skip concat."""

    def __init__(self, width: int = 2, depth: int = 3, classes: int = 2):
        super().__init__()
        self.inc = double_conv(3, width)
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        w = width
        for _ in range(depth):
            self.down.append(nn.Sequential(nn.MaxPool2d(2), double_conv(w, 2 * w)))
            w *= 2
        for _ in range(depth):
            self.up.append(nn.ConvTranspose2d(w, w // 2, 2, 2))
            self.dec.append(double_conv(w, w // 2))
            w //= 2
        self.outc = nn.Conv2d(w, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up, dec in zip(self.up, self.dec):
            y = dec(torch.cat([skips.pop(), up(y)], 1))
        return self.outc(y)


# ---- DeepLab-style dilated net -------------------------------------------------------------------


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates=(6, 12, 18)):
        super().__init__()
        self.b0 = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU())
        for i, r in enumerate(rates, 1):
            self.add_module(f"b{i}", nn.Sequential(nn.Conv2d(cin, cout, 3, padding=r,
                                                             dilation=r), nn.ReLU()))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU())
        self.project = nn.Sequential(nn.Conv2d(cout * (len(rates) + 2), cout, 1), nn.ReLU())
        self.n = len(rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [getattr(self, f"b{i}")(x) for i in range(self.n + 1)]
        pooled = F.interpolate(self.pool(x), size=x.shape[2:], mode="bilinear",
                               align_corners=False)
        return self.project(torch.cat(branches + [pooled], 1))


class DeepLab(nn.Module):
    """Output stride 8: a stride-4 stem, one stride-2 stage, then dilated (2, 4) stages with
    the stride removed, ASPP, bilinear upsampling back to the input size."""

    def __init__(self, width: int = 2, classes: int = 2):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.stage1 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),
                                    nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, 1, 2, dilation=2), nn.ReLU(),
                                    nn.Conv2d(4 * w, 4 * w, 3, 1, 2, dilation=2), nn.ReLU())
        self.stage3 = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, 1, 4, dilation=4), nn.ReLU())
        self.aspp = ASPP(4 * w, 2 * w, rates=(2, 4, 6))
        self.head = nn.Conv2d(2 * w, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stage3(self.stage2(self.stage1(self.stem(x))))
        y = self.head(self.aspp(y))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


# ---- MobileNetV2-style ---------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2's (t, c, n, s) table with channels divided by ``div``."""

    CONFIG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, div: int = 8, classes: int = 10, expand_max: int = 2):
        super().__init__()
        c = max(32 // div, 2)
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False),
                                                 nn.BatchNorm2d(c), nn.ReLU6(inplace=True))]
        for t, ch, n, s in self.CONFIG:
            cout = max(ch // div, 2)
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, min(t, expand_max)))
                c = cout
        last = max(1280 // div, 2)
        layers.append(nn.Sequential(nn.Conv2d(c, last, 1, bias=False), nn.BatchNorm2d(last),
                                    nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))
