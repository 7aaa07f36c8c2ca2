"""Flax linen modules: bound, unbound (abstract init) and (module, variables); module paths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax_oracle import positive, support_boxes

from analytic import analyze

nn = pytest.importorskip("flax.linen")


class Block(nn.Module):
    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features, (3, 3), strides=self.strides, padding="SAME")(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        return nn.relu(x)


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = Block(4, strides=2, name="stem")(x)
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        x = Block(4, name="body")(x)
        x = nn.ConvTranspose(2, (2, 2), strides=(2, 2), name="up")(x)
        x = nn.avg_pool(x, (2, 2), strides=(1, 1), padding="VALID")
        return nn.Conv(2, (1, 1), name="head")(x)


SHAPE = (1, 17, 14, 3)


def test_module_paths_and_rsp():
    net = Net()
    a = analyze(net, SHAPE)  # unbound: initialised abstractly, no weights computed
    paths = {n.path for n in a.graph}
    assert {"stem.Conv_0", "stem.BatchNorm_0", "stem", "body.Conv_0", "up", "head"} <= paths
    stem = a.node("stem.Conv_0")
    # SAME, k3, s2: left pad = max(3 - (n % 2 or 2), 0) // 2 (DESIGN.md §5)
    assert stem.size == (3, 3) and stem.stride == (2, 2)
    assert stem.padding == tuple(max(3 - (n % 2 or 2), 0) // 2 for n in SHAPE[1:3])
    assert a.node("body").size == (15, 15)  # stem 3 (S2), pool +4 (S4), conv +8
    assert a.node("up").size == (None, None)  # transposed convolution: explicit reads


def test_bound_and_pair_agree_with_oracle():
    net = Net()
    variables = positive(net.init(jax.random.PRNGKey(0), jnp.zeros(SHAPE)))
    x = jax.ShapeDtypeStruct(SHAPE, jnp.float64)
    bound = analyze(net.bind(variables), example_inputs=x)
    pair = analyze((net, variables), example_inputs=x)
    assert (bound.regions().lo == pair.regions().lo).all()
    positions, boxes = support_boxes(lambda v, x: net.apply(v, x), SHAPE, params=variables)
    for p, box in zip(positions, boxes):
        assert [tuple(r) for r in pair.regions().at(p)] == box, p
