"""Crop measurement (erf.crop): cropped and full gradients agree to floating-point tolerance;
a net whose padding depends on the input size is refused, and forcing it is wrong."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from analytic import analyze  # noqa: E402
from erf.crop import CropRefused, measure_cropped, measure_full  # noqa: E402
from experiments.models.torch_nets import VGG16, DeepLab, MobileNetV2, ResNet  # noqa: E402


def grid(shape, step):
    return np.array([(i, j) for i in range(0, shape[0], step) for j in range(0, shape[1], step)]
                    + [(shape[0] - 1, shape[1] - 1)])


CASES = {
    "resnet-layer2": (lambda: ResNet((1, 1, 1, 1), width=2), (96, 80), "layer2", 3),
    "resnet-layer3": (lambda: ResNet((2, 2, 2, 2), width=2), (160, 144), "layer3", 3),
    "vgg16-conv3": (lambda: VGG16(fc=False), (72, 64), "conv3", 5),
    "mobilenet_v2-features.6": (lambda: MobileNetV2(div=8), (96, 96), "features.6", 4),
    "deeplab-stage1": (lambda: DeepLab(width=2), (96, 88), "stage1", 5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cropped_equals_full(name):
    make, spatial, output, step = CASES[name]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = make().double().eval()
    x = torch.randn(1, 3, *spatial, dtype=torch.float64)
    units = grid(analyze(model, tuple(x.shape), output=output).node().shape, step)
    cropped, info = measure_cropped(model, x, output, units)
    assert info["refused"] is None
    assert all(eval(shape) != list(spatial) for shape in info["crops"])  # really cropped
    full = measure_full(model, x, output, units)
    assert np.abs(full).max() > 0
    np.testing.assert_allclose(cropped, full, rtol=1e-9, atol=1e-12)


class SamePad(nn.Module):
    """TensorFlow 'SAME': the padding is computed from the input size at forward time."""

    def __init__(self, k: int, s: int):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(1, 1, k, s)

    def forward(self, x):
        pads = []
        for n in reversed(x.shape[2:]):
            total = max(self.k - (n % self.s or self.s), 0)
            pads += [total // 2, total - total // 2]
        return self.conv(F.pad(x, pads))


def test_size_dependent_padding_is_refused_and_forcing_is_wrong():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(SamePad(3, 2), SamePad(3, 2), SamePad(3, 2), SamePad(3, 1)).double()
    x = torch.randn(1, 1, 67, 67, dtype=torch.float64)
    units = np.array([[3, 3], [4, 5]])
    with pytest.raises(CropRefused, match="depends on the input size"):
        measure_cropped(model, x, "3", units)
    forced, info = measure_cropped(model, x, "3", units, force=True)
    assert "depends on the input size" in info["refused"]
    full = measure_full(model, x, "3", units)
    assert not np.allclose(forced, full)  # the refusal is necessary


def test_global_end_point_is_refused():
    model = ResNet((1, 1, 1, 1), width=2).double()
    with pytest.raises(CropRefused, match="global"):
        measure_cropped(model, torch.randn(1, 3, 96, 96, dtype=torch.float64), "avgpool",
                        np.array([[0, 0]]))
