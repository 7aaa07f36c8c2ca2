"""alexnet_v2 as TF-slim builds it (nets/alexnet.py, "One weird trick" AlexNet without LRN).

Arg scope: conv2d 'SAME' with bias and ReLU, no batch norm; max_pool2d 'VALID'. The fully
connected layers are convolutions: fc6 5x5 'VALID', fc7 and fc8 1x1.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import ArgScope, MaxPool2d, SpatialSqueeze

SCOPE = ArgScope(batch_norm=None)

ENDPOINTS = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")


def alexnet_v2(num_classes: int = 1000, dropout_keep_prob: float = 0.5) -> nn.Sequential:
    """alexnet_v2 up to fc8 (squeezed logits); ``pool5`` is the last spatial end-point."""
    conv = SCOPE.conv
    drop = 1.0 - dropout_keep_prob
    return nn.Sequential(OrderedDict(
        conv1=conv(3, 64, 11, 4, padding="VALID"),
        pool1=MaxPool2d(3, 2),
        conv2=conv(64, 192, 5),
        pool2=MaxPool2d(3, 2),
        conv3=conv(192, 384, 3),
        conv4=conv(384, 384, 3),
        conv5=conv(384, 256, 3),
        pool5=MaxPool2d(3, 2),
        fc6=conv(256, 4096, 5, padding="VALID"),
        dropout6=nn.Dropout(drop),
        fc7=conv(4096, 4096, 1),
        dropout7=nn.Dropout(drop),
        fc8=conv(4096, num_classes, 1, activate=False),
        squeeze=SpatialSqueeze(),
    )).eval()
