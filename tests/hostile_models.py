"""Models that the frontends must refuse clearly (tests/test_hostile.py), by ``module:attr``."""

import torch
from torch import nn


class Branchy(nn.Module):
    """Data-dependent control flow: torch.export cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


class Crop(nn.Module):
    """Crops every row away: an empty feature map."""

    def forward(self, x):
        return x[:, :, 4:4]


class Spectral(nn.Module):
    """An op without a receptive-field rule (an FFT)."""

    def forward(self, x):
        return torch.fft.fft2(x).real


conv = nn.Conv2d(3, 8, 3)
linear = nn.Linear(8, 4)  # input (N, F): no spatial dims
branchy = Branchy()
crop = Crop()
spectral = Spectral()


class NaNGrad(nn.Module):
    """sqrt of values that can be negative: NaN gradients for some units and samples."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.sqrt(self.conv(x))


nan_grad = NaNGrad()
