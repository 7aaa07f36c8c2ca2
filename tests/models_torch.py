"""Test networks for the torch frontend: ``Fn`` for one-op cases; the whole networks live in
``experiments.models.torch_nets`` (re-exported here)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Fn(nn.Module):
    """``forward(x) = fn(self, x)`` with the given submodules and buffers."""

    def __init__(self, fn: Callable, buffers: dict | None = None, **modules: nn.Module):
        super().__init__()
        self.fn = fn
        for name, mod in modules.items():
            self.add_module(name, mod)
        for name, value in (buffers or {}).items():
            self.register_buffer(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)




from experiments.models.torch_nets import (  # noqa: E402, F401  (re-exported for the tests)
    VGG16,
    DeepLab,
    MobileNetV2,
    ResNet,
    UNet,
)
