"""The JAX TF-slim nets (experiments/models/slim_jax.py) against the paper and the PyTorch twins.

Each net (width 1/8: geometry is what matters) gives the paper's r/S/P at its last spatial
end-point at 224x224, on both axes; and every end-point it shares with the PyTorch
definition (``experiments.models.slim.ENDPOINTS``) has the same r/S/P in both frameworks.
"""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("jax")

import analytic  # noqa: E402
from experiments.models import slim_jax  # noqa: E402

NAMES = ("alexnet_v2", "vgg_16", "mobilenet_v1", "resnet_v1_50", "inception_v3")

# The paper's table (Araujo et al., Distill 2019): end-point, r, S, P at 224, both axes.
PAPER = {
    "alexnet_v2": ("pool5", 195, 32, 64),
    "vgg_16": ("pool5", 212, 32, 90),
    "mobilenet_v1": ("Conv2d_13_pointwise", 315, 32, 126),
    "resnet_v1_50": ("block4", 483, 32, 239),
    "inception_v3": ("Mixed_7c", 1311, 32, 618),
}


@functools.cache
def jax_analysis(name: str):
    target = getattr(slim_jax, name)()
    return analytic.analyze(target, (1, 224, 224, 3), layout="NHWC", output=PAPER[name][0])


@functools.cache
def torch_analysis(name: str):
    from experiments.models.slim import PAPER_ENDPOINT, SLIM_MODELS
    return analytic.analyze(SLIM_MODELS[name](), (1, 3, 224, 224),
                            output=PAPER_ENDPOINT[name])


def rsp(analysis, endpoint: str):
    node = analysis.node(endpoint)
    return tuple(node.size), tuple(node.stride), tuple(node.padding)


@pytest.mark.parametrize("name", NAMES)
def test_paper_row(name):
    endpoint, r, s, p = PAPER[name]
    assert rsp(jax_analysis(name), endpoint) == ((r, r), (s, s), (p, p))


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_torch_at_every_shared_end_point(name):
    pytest.importorskip("torch")
    from experiments.models.slim import ENDPOINTS, PAPER_ENDPOINT
    assert PAPER_ENDPOINT[name] == PAPER[name][0]
    j, t = jax_analysis(name), torch_analysis(name)
    for endpoint in ENDPOINTS[name]:
        assert rsp(j, endpoint) == rsp(t, endpoint), endpoint


@pytest.mark.parametrize("name", NAMES)
def test_apply_runs_on_nhwc_input(name):
    import jax.numpy as jnp
    apply, params = getattr(slim_jax, name)(width=1 / 32)
    y = apply(params, jnp.ones((1, 224, 224, 3), jnp.float32))
    assert y.ndim == 4 and y.shape[1:3] == {"inception_v3": (5, 5), "alexnet_v2": (5, 5)}.get(
        name, (7, 7))
    assert bool(jnp.isfinite(y).all())


def test_zoo_entries_name_the_jax_factories():
    from experiments.models.zoo import ZOO
    for name in NAMES:
        entry = ZOO[name]
        assert entry.factories["jax"] == f"experiments.models.slim_jax:{name}"
        assert entry.default_shape["jax"] == (1, 224, 224, 3)
        assert entry.layout["jax"] == "NHWC"
