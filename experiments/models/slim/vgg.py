"""vgg_a and vgg_16 as TF-slim builds them (nets/vgg.py).

Arg scope: conv2d 3x3 'SAME' with bias and ReLU, no batch norm; max_pool2d 2x2 stride 2
'VALID'. ``slim.repeat`` names the convolutions ``conv3/conv3_1`` ... (module paths
``conv3.conv3_1``). fc6 is a 7x7 'VALID' convolution, fc7 and fc8 are 1x1.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import ArgScope, MaxPool2d, SpatialSqueeze

SCOPE = ArgScope(batch_norm=None)

VGG_A = (1, 1, 2, 2, 2)
VGG_16 = (2, 2, 3, 3, 3)
WIDTHS = (64, 128, 256, 512, 512)


def endpoints(repeats: tuple[int, ...]) -> tuple[str, ...]:
    names = []
    for i, n in enumerate(repeats, start=1):
        names += [f"conv{i}.conv{i}_{j}" for j in range(1, n + 1)] + [f"pool{i}"]
    return tuple(names)


def vgg(repeats: tuple[int, ...], num_classes: int = 1000,
        dropout_keep_prob: float = 0.5) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c = 3
    for i, (n, width) in enumerate(zip(repeats, WIDTHS, strict=True), start=1):
        convs = OrderedDict()
        for j in range(1, n + 1):
            convs[f"conv{i}_{j}"] = SCOPE.conv(c, width, 3)
            c = width
        layers[f"conv{i}"] = nn.Sequential(convs)
        layers[f"pool{i}"] = MaxPool2d(2, 2)
    drop = 1.0 - dropout_keep_prob
    layers.update(
        fc6=SCOPE.conv(c, 4096, 7, padding="VALID"),
        dropout6=nn.Dropout(drop),
        fc7=SCOPE.conv(4096, 4096, 1),
        dropout7=nn.Dropout(drop),
        fc8=SCOPE.conv(4096, num_classes, 1, activate=False),
        squeeze=SpatialSqueeze(),
    )
    return nn.Sequential(layers).eval()


def vgg_a(num_classes: int = 1000, dropout_keep_prob: float = 0.5) -> nn.Sequential:
    """VGG 11-layer (configuration A); ``pool5`` is the last spatial end-point."""
    return vgg(VGG_A, num_classes, dropout_keep_prob)


def vgg_16(num_classes: int = 1000, dropout_keep_prob: float = 0.5) -> nn.Sequential:
    """VGG 16-layer (configuration D); ``pool5`` is the last spatial end-point."""
    return vgg(VGG_16, num_classes, dropout_keep_prob)
