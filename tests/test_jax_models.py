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


def _analysis(name, shape, width=2, **kw):
    init, fn = MODELS[name]
    return analyze((fn, init(width=width)), example_inputs=jax.ShapeDtypeStruct(shape, jnp.float64),
                   **kw)


def test_vgg16_pool5_at_224_is_the_papers_row():
    a = _analysis("vgg16", (1, 224, 224, 3))
    pool5 = a.node("pool5")
    assert (pool5.size, pool5.stride, pool5.padding) == ((212, 212), (32, 32), (90, 90))
    assert a.node("conv1_2").size == (5, 5) and a.node("pool1").stride == (2, 2)
    assert a.aligned and pool5.shape == (7, 7)


def test_resnet18_geometry():
    a = _analysis("resnet", (1, 224, 224, 3))
    # torchvision ResNet-18: r = 435 at layer4, stride 32, centred (offset (r-1)/2 - P = 0)
    layer4 = a.node("layer4")
    assert (layer4.size, layer4.stride, layer4.padding) == ((435, 435), (32, 32), (217, 217))
    assert a.node("maxpool").size == (11, 11)
    assert a.node("layer2.0.downsample").stride == (8, 8)  # the 1x1 stride-2 shortcut
    assert a.aligned
    assert a.node("fc").is_global


def test_dilated_context_module():
    a = _analysis("dilated", (1, 64, 64, 1), layout="NHWC")
    # stem k3 s2 (r 3), then kernel-3 convs with dilations d at stride 2: r += 2*2*d
    assert a.size == (3 + 4 * sum((1, 1, 2, 4, 8, 16, 1)),) * 2 == (135, 135)
    assert a.stride == (2, 2) and a.padding == (67, 67)


def test_unet_regions_are_defined_where_rsp_are_not():
    a = _analysis("unet", (1, 32, 32, 1))
    assert a.node("mid").size == (32, 32)
    assert a.size == (None, None)  # after the transposed conv and the resize
    assert a.regions().lo.shape == (2, 32, 32)


def _grid(shape, step):
    return [p for p in np.ndindex(*shape) if all(i % step == 0 or i == n - 1
                                                 for i, n in zip(p, shape))]


ORACLE_CASES = {
    "vgg16-pool3": ("vgg16", (1, 48, 48, 3), "pool3", 1, 1),
    "vgg16-pool5": ("vgg16", (1, 64, 64, 3), "pool5", 1, 1),
    "resnet-layer2": ("resnet", (1, 40, 40, 3), "layer2", 1, 1),
    "resnet-layer4": ("resnet", (1, 64, 64, 3), "layer4", 1, 1),
    "unet-up2": ("unet", (1, 24, 24, 1), "up2", 2, 2),
    "unet-head": ("unet", (1, 24, 24, 1), None, 2, 5),
    "dilated-conv7": ("dilated", (1, 48, 48, 1), "conv7", 2, 4),
}


@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_endpoint_regions_against_oracle(case):
    name, shape, endpoint, width, step = ORACLE_CASES[case]
    init, fn = MODELS[name]
    params = positive(init(width=width))
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
