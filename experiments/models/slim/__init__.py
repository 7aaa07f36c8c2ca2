"""PyTorch definitions of the TF-slim networks of the paper's table (Araujo et al., Distill 2019).

Structurally faithful to tensorflow/models research/slim/nets: every kernel, stride, dilation
and padding as slim builds them, TensorFlow 'SAME' padding computed from the actual input
size (asymmetric when the size does not divide), resnet_utils.conv2d_same's explicit
padding, ResNet strides in the last unit of each block, inception branches and depthwise-
separable convolutions. Channel widths as slim's; weights are random (no checkpoints).
Factories return models in eval mode (batch norm uses its moving statistics, as slim's
inference graphs do). Module paths are slim's end-point names: pick ``block4``, ``Mixed_7c``,
``conv1.conv1_1`` (slim's ``conv1/conv1_1``) ... as outputs.

- ``SLIM_MODELS``: name -> zero-argument factory (keywords such as ``num_classes=1000``).
- ``PAPER_ENDPOINT``: name -> module path of the last spatial end-point, the one the
  paper's table reports (before global pooling and logits).
- ``ENDPOINTS``: name -> slim's spatial end-points in execution order.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from . import (
    alexnet,
    inception_resnet_v2,
    inception_v2,
    inception_v3,
    inception_v4,
    mobilenet_v1,
    resnet,
    vgg,
)

SLIM_MODELS: dict[str, Callable[..., nn.Module]] = {
    "alexnet_v2": alexnet.alexnet_v2,
    "vgg_a": vgg.vgg_a,
    "vgg_16": vgg.vgg_16,
    "mobilenet_v1": mobilenet_v1.mobilenet_v1,
    "mobilenet_v1_075": mobilenet_v1.mobilenet_v1_075,
    "resnet_v1_50": resnet.resnet_v1_50,
    "resnet_v1_101": resnet.resnet_v1_101,
    "resnet_v1_152": resnet.resnet_v1_152,
    "resnet_v1_200": resnet.resnet_v1_200,
    "resnet_v2_50": resnet.resnet_v2_50,
    "resnet_v2_101": resnet.resnet_v2_101,
    "resnet_v2_152": resnet.resnet_v2_152,
    "resnet_v2_200": resnet.resnet_v2_200,
    "inception_v2": inception_v2.inception_v2,
    "inception_v3": inception_v3.inception_v3,
    "inception_v4": inception_v4.inception_v4,
    "inception_resnet_v2": inception_resnet_v2.inception_resnet_v2,
}

ENDPOINTS: dict[str, tuple[str, ...]] = {
    "alexnet_v2": alexnet.ENDPOINTS,
    "vgg_a": vgg.endpoints(vgg.VGG_A),
    "vgg_16": vgg.endpoints(vgg.VGG_16),
    "mobilenet_v1": mobilenet_v1.ENDPOINTS,
    "mobilenet_v1_075": mobilenet_v1.ENDPOINTS,
    **{name: resnet.ENDPOINTS for name in SLIM_MODELS if name.startswith("resnet_")},
    "inception_v2": inception_v2.ENDPOINTS,
    "inception_v3": inception_v3.ENDPOINTS,
    "inception_v4": inception_v4.ENDPOINTS,
    "inception_resnet_v2": inception_resnet_v2.ENDPOINTS,
}

PAPER_ENDPOINT: dict[str, str] = {name: points[-1] for name, points in ENDPOINTS.items()}

__all__ = ["ENDPOINTS", "PAPER_ENDPOINT", "SLIM_MODELS"]
