"""Whole networks through the torch frontend: VGG-16 against the paper, end-points of a
ResNet, U-Net, DeepLab-style and MobileNetV2-style net against the autograd oracle."""

from __future__ import annotations

import os
import time

import pytest

torch = pytest.importorskip("torch")

from models_torch import VGG16, DeepLab, MobileNetV2, ResNet, UNet  # noqa: E402
from torch_oracle import compare, trace64  # noqa: E402

import analytic  # noqa: E402
from analytic.frontends.torch import trace  # noqa: E402

# (r, S, P) of TF-slim vgg_16 end-points from the paper's recurrences (eq. 1, 9, 10) with
# 3x3 SAME convs (padding 1) and 2x2 VALID pools; pool5 is the paper's table row 212/32/90.
VGG16_PAPER = {
    "conv1/conv1_1": (3, 1, 1), "conv1/conv1_2": (5, 1, 2), "pool1": (6, 2, 2),
    "conv2/conv2_1": (10, 2, 4), "conv2/conv2_2": (14, 2, 6), "pool2": (16, 4, 6),
    "conv3/conv3_1": (24, 4, 10), "conv3/conv3_2": (32, 4, 14), "conv3/conv3_3": (40, 4, 18),
    "pool3": (44, 8, 18), "conv4/conv4_1": (60, 8, 26), "conv4/conv4_2": (76, 8, 34),
    "conv4/conv4_3": (92, 8, 42), "pool4": (100, 16, 42), "conv5/conv5_1": (132, 16, 58),
    "conv5/conv5_2": (164, 16, 74), "conv5/conv5_3": (196, 16, 90), "pool5": (212, 32, 90),
}


def spread(shape, step):
    """Positions on a grid of ``step``, the last row/column (borders are where bugs hide) and
    a 2x2 block in the middle (neighbours show the stride)."""
    axes = [sorted(set(range(0, n, step)) | {n - 1}) for n in shape]
    mid = [(n // 2 - 1, n // 2) for n in shape]
    block = [(i, j) for i in mid[0] for j in mid[1]]
    return sorted({(i, j) for i in axes[0] for j in axes[1]} | set(block))


def test_vgg16_per_layer_values_match_the_paper():
    a = analytic.analyze(VGG16(), (1, 3, 224, 224))
    got = {name: (a.node(name).size, a.node(name).stride, a.node(name).padding)
           for name in VGG16_PAPER}
    want = {name: ((r, r), (s, s), (p, p)) for name, (r, s, p) in VGG16_PAPER.items()}
    assert got == want
    assert a.node("conv3/conv3_2").path == "conv3.conv3_2"
    assert a.aligned


def test_vgg16_pool5_matches_the_oracle():
    # 224: the paper's size (exact boxes, r); 256: two unclipped positions show S and P too
    compare(VGG16(fc=False), (1, 3, 224, 224), "pool5", spread((7, 7), 1), rsp=True)
    a, _, _ = compare(VGG16(fc=False), (1, 3, 256, 256), "pool5", [(3, 3), (4, 4), (3, 4)],
                      rsp=True)
    assert (a.size, a.stride, a.padding) == ((212, 212), (32, 32), (90, 90))


def test_resnet_end_points_match_the_oracle():
    model = ResNet((3, 4, 6, 3), width=2)
    shape = (1, 3, 64, 80)
    cap = trace64(model, shape)
    compare(model, shape, "layer1", spread((16, 20), 3), rsp=True, capture=cap)
    for end in ("layer2", "layer3.5", "layer4"):
        compare(model, shape, end, capture=cap)
    a, _, _ = compare(model, shape, capture=cap)  # the logits: every input pixel
    assert a.node().is_global


def test_resnet_block_output_is_the_relu_after_the_residual_add():
    cap = trace(ResNet((1, 1, 1, 1), width=2), (1, 3, 32, 32))
    node = cap.graph[cap.graph.resolve("layer1.0")]
    assert node.op in ("relu", "relu_") and node.path == "layer1.0.relu"
    (add,) = node.inputs
    assert cap.graph[add].op in ("add", "add_")
    assert cap.graph.resolve("layer1/0") == node.name


def test_resnet_is_aligned_with_stride_32():
    a = analytic.analyze(ResNet((3, 4, 6, 3), width=2), (1, 3, 224, 224), output="layer4")
    assert a.aligned and a.stride == (32, 32)


def test_unet_matches_the_oracle():
    model, shape = UNet(width=2), (1, 3, 32, 40)
    a, cap, _ = compare(model, shape, positions=spread((32, 40), 5))
    assert a.node("up.0").shift_invariant is False  # transposed conv: r, S, P undefined
    compare(model, shape, "down.2", capture=cap)


def test_deeplab_matches_the_oracle():
    model = DeepLab(width=2)
    shape = (1, 3, 64, 72)
    cap = trace64(model, shape)
    compare(model, shape, "stage1", spread((8, 9), 2), rsp=True, capture=cap)
    compare(model, shape, "stage3", capture=cap)
    compare(model, shape, "aspp.b3", capture=cap)
    # the image-pooling branch makes the output global
    a, _, _ = compare(model, shape, positions=spread((64, 72), 9), capture=cap)
    assert a.node().is_global


def test_mobilenet_v2_matches_the_oracle():
    model = MobileNetV2(div=8)
    shape = (1, 3, 64, 64)
    cap = trace64(model, shape)
    compare(model, shape, "features.3", spread((16, 16), 4), rsp=True, capture=cap)
    compare(model, shape, "features.10", capture=cap)
    compare(model, shape, "features.18", capture=cap)
    a, _, _ = compare(model, shape, capture=cap)
    assert a.node().is_global


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("ERF_TORCH_BENCH"), reason="set ERF_TORCH_BENCH=1")
def test_resnet50_real_widths_timing():
    """ResNet-50 at real widths and 224: export vs building the IR and analysing."""
    model = ResNet((3, 4, 6, 3), width=64, classes=1000)
    cap = trace(model, (1, 3, 224, 224))
    t0 = time.perf_counter()
    a = analytic.analyze_graph(cap.graph, "layer4")
    a.regions()
    analysis = time.perf_counter() - t0
    print(f"\nResNet-50 (real widths, 224): capture ({cap.method}) {cap.export_seconds:.2f} s, "
          f"build IR "
          f"{cap.build_seconds:.3f} s, analyze + regions {analysis:.3f} s, "
          f"{len(cap.graph)} nodes; layer4 r={a.size} S={a.stride} P={a.padding}")
