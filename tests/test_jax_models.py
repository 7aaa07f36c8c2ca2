"""Whole networks in plain JAX (tests/models_jax.py): published r, S, P and exact regions
against the jax.vjp oracle at chosen end-points."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_oracle import positive, support_boxes
from models_jax import MODELS

from analytic import analyze


def _analysis(name, shape, width=2, init_kw=None, **kw):
    init, fn = MODELS[name]
    return analyze((fn, init(width=width, **(init_kw or {}))),
                   example_inputs=jax.ShapeDtypeStruct(shape, jnp.float64), **kw)


def test_vgg16_pool5_at_224_is_the_papers_row():
    a = _analysis("vgg16", (1, 224, 224, 3))
    pool5 = a.node("pool5")
    assert (pool5.size, pool5.stride, pool5.padding) == ((212, 212), (32, 32), (90, 90))
    assert a.node("conv1.conv1_2").size == (5, 5) and a.node("pool1").stride == (2, 2)
    assert a.aligned and pool5.shape == (7, 7)
    fc8 = a.node("fc8")  # fc6 is a 7x7 VALID conv on pool5: the whole 224 input
    assert (fc8.size, fc8.shape) == ((404, 404), (1, 1))


def test_resnet18_geometry():
    a = _analysis("resnet", (1, 224, 224, 3), init_kw={"block": "basic", "layers": (2, 2, 2, 2)})
    # torchvision ResNet-18: r = 435 at layer4, stride 32, centred (offset (r-1)/2 - P = 0)
    layer4 = a.node("layer4")
    assert (layer4.size, layer4.stride, layer4.padding) == ((435, 435), (32, 32), (217, 217))
    assert a.node("maxpool").size == (11, 11)
    assert a.node("layer2.0.downsample").stride == (8, 8)  # the 1x1 stride-2 shortcut
    assert a.aligned
    assert a.node("fc").is_global


def test_resnet50_geometry():
    a = _analysis("resnet", (1, 224, 224, 3), width=1)
    # torchvision ResNet-50 (v1.5, stride on the 3x3): r = 427 at layer4 (TF-slim's v1, with
    # the stride on the first 1x1, has 483 and P 239)
    layer4 = a.node("layer4")
    assert (layer4.size, layer4.stride, layer4.padding) == ((427, 427), (32, 32), (213, 213))
    assert a.aligned


def test_dilated_context_module():
    a = _analysis("dilated", (1, 64, 64, 1), layout="NHWC")
    # stem k3 s2 (r 3), then kernel-3 convs with dilations d at stride 2: r += 2*2*d
    assert a.size == (3 + 4 * sum((1, 1, 2, 4, 8, 16, 1)),) * 2 == (135, 135)
    assert a.stride == (2, 2) and a.padding == (67, 67)


def test_unet_regions_are_defined_where_rsp_are_not():
    a = _analysis("unet", (1, 32, 32, 3))
    # inc: two 3x3 (r 5); each down at stride s: a 2x2 pool (+s), two 3x3 at 2s (+8s)
    assert a.node("down.2").size == (5 + sum(9 * s for s in (1, 2, 4)),) * 2 == (68, 68)
    assert a.size == (None, None)  # after the transposed convolutions
    assert a.regions().lo.shape == (2, 32, 32)


def test_deeplab_output_stride_8():
    a = _analysis("deeplab", (1, 64, 64, 3))
    assert a.node("stage3").stride == (8, 8) and a.node("aspp.b3").stride == (8, 8)
    assert a.node("aspp.pool").is_global and a.node("aspp").is_global
    assert a.size == (None, None)  # after the bilinear upsampling


def _grid(shape, step):
    return [p for p in np.ndindex(*shape) if all(i % step == 0 or i == n - 1
                                                 for i, n in zip(p, shape))]


ORACLE_CASES = {  # model, input, end-point, width, position step, init options
    "vgg16-pool3": ("vgg16", (1, 48, 48, 3), "pool3", 1, 1, {"fc": False}),
    "vgg16-pool5": ("vgg16", (1, 64, 64, 3), "pool5", 1, 1, {"fc": False}),
    "resnet-layer2": ("resnet", (1, 40, 40, 3), "layer2", 1, 1, {"layers": (1, 2, 1, 1)}),
    "resnet-layer4": ("resnet", (1, 64, 64, 3), "layer4", 1, 1, {"layers": (1, 1, 1, 1)}),
    "unet-up.1": ("unet", (1, 16, 16, 3), "up.1", 1, 2, {}),
    "unet-outc": ("unet", (1, 16, 16, 3), None, 1, 3, {}),
    "deeplab-out": ("deeplab", (1, 37, 33, 3), None, 1, 4, {}),
    "dilated-conv7": ("dilated", (1, 48, 48, 1), "conv7", 2, 4, {}),
}


@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_endpoint_regions_against_oracle(case):
    name, shape, endpoint, width, step, init_kw = ORACLE_CASES[case]
    init, fn = MODELS[name]
    params = positive(init(width=width, **init_kw))
    f = lambda p, x: fn(p, x, endpoint=endpoint)
    a = analyze((f, params), example_inputs=jax.ShapeDtypeStruct(shape, jnp.float64))
    full = analyze((fn, params), example_inputs=jax.ShapeDtypeStruct(shape, jnp.float64),
                   output=endpoint)
    regions = a.regions()
    np.testing.assert_array_equal(regions.lo, full.regions().lo)  # end-point by path
    positions = _grid(regions.lo.shape[1:], step)
    got, boxes = support_boxes(f, shape, positions, params=params)
    for p, box in zip(got, boxes):
        assert [tuple(r) for r in regions.at(p)] == box, (case, p)
