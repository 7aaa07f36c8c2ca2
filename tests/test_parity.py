"""Parity: the same architectures written in PyTorch (models_torch.py) and in JAX
(models_jax.py) give identical r, S, P and identical exact regions at every end-point they
share (module paths: ``conv3.conv3_2``, ``layer2.0.downsample.0``, ``aspp.b1``, ...).

The frameworks differ in how finely ops are split (batch norm is one aten op and four lax
ops), so matched end-points are module paths, each resolved to the module's last node. Global
nodes may keep size-1 axes in one framework and none in the other (``AdaptiveAvgPool2d(1)`` vs
``jnp.mean``): such regions are compared with the size-1 axes dropped.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jax")

import models_jax as mj  # noqa: E402
import models_torch as mt  # noqa: E402

from analytic import analyze  # noqa: E402

# name: (torch module factory, jax (fn, init kwargs), spatial size(s))
PAIRS = {
    "vgg16": (lambda: mt.VGG16(width=1), (mj.vgg16, {"width": 1}), (224, 224)),
    "resnet50": (lambda: mt.ResNet(width=1), (mj.resnet, {"width": 1}), (96, 80)),
    "unet": (lambda: mt.UNet(), (mj.unet, {}), (32, 40)),
    "deeplab": (lambda: mt.DeepLab(), (mj.deeplab, {}), (65, 50)),
}
INIT = {mj.vgg16: mj.vgg16_init, mj.resnet: mj.resnet_init, mj.unet: mj.unet_init,
        mj.deeplab: mj.deeplab_init}
MIN_SHARED = {"vgg16": 30, "resnet50": 140, "unet": 45, "deeplab": 25}


def _paths(a):
    return {n.path for n in a.graph if n.path and n.name != a.graph.input}


@pytest.mark.parametrize("name", list(PAIRS))
def test_same_architecture_same_analysis(name):
    make_torch, (fn, init_kw), (h, w) = PAIRS[name]
    at = analyze(make_torch().eval(), (1, 3, h, w))
    aj = analyze((fn, INIT[fn](**init_kw)), (1, h, w, 3))
    assert at.input_shape == aj.input_shape == (h, w)
    shared = sorted(_paths(at) & _paths(aj))
    assert len(shared) >= MIN_SHARED[name], shared
    for path in shared + [None]:  # None: the models' outputs
        rt, rj = at.node(path), aj.node(path)
        assert (rt.size, rt.stride, rt.padding) == (rj.size, rj.stride, rj.padding), path
        assert rt.is_global == rj.is_global, path
        bt, bj = at.regions(path), aj.regions(path)
        lo_t, hi_t, lo_j, hi_j = bt.lo, bt.hi, bj.lo, bj.hi
        if lo_t.shape != lo_j.shape:  # size-1 axes kept by one framework only
            lo_t, hi_t = lo_t.reshape(len(lo_t), -1), hi_t.reshape(len(hi_t), -1)
            lo_j, hi_j = lo_j.reshape(len(lo_j), -1), hi_j.reshape(len(hi_j), -1)
        np.testing.assert_array_equal(lo_t, lo_j, err_msg=str(path))
        np.testing.assert_array_equal(hi_t, hi_j, err_msg=str(path))
    assert at.aligned == aj.aligned


def test_vgg16_parity_reproduces_the_papers_row():
    at = analyze(mt.VGG16(width=1).eval(), (1, 3, 224, 224), output="pool5")
    aj = analyze((mj.vgg16, mj.vgg16_init(width=1)), (1, 224, 224, 3), output="pool5")
    assert (at.size, at.stride, at.padding) == (aj.size, aj.stride, aj.padding) == (
        (212, 212), (32, 32), (90, 90))
