"""ERF measurement against closed forms: the self-convolved box (DESIGN.md §7, Luo et al.
2016), its variance n(k^2-1)/12, and the random-weight E[g^2] of the same shape."""

import math

import numpy as np
import pytest
from erf_cases import box_power, conv_stack

import erf
from erf.metrics import gaussian_fit, moment_sigma

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("k,n,expected", [(3, 2, [1, 2, 3, 2, 1]), (3, 3, [1, 3, 6, 7, 6, 3, 1])],
                         ids=["k3n2", "k3n3"])
def test_paper_values_of_the_box_power(k, n, expected):
    assert box_power(k, n).tolist() == expected  # the oracle itself, against DESIGN.md §7


@pytest.mark.parametrize("ndim", [1, 2, 3], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("k,n", [(3, 2), (3, 3), (5, 2)], ids=["k3n2", "k3n3", "k5n2"])
def test_all_ones_stack_is_the_outer_product_of_box_powers(k, n, ndim):
    size = 11 if ndim == 3 else 15
    model, graph = conv_stack(n, k, ndim=ndim, size=size)
    r = erf.measure(model.double(), (1, 1, *[size] * ndim), analysis=graph, init="ones")
    line = box_power(k, n)
    expected = np.zeros([size] * ndim)
    c, half = size // 2, len(line) // 2
    pattern = line
    for _ in range(ndim - 1):
        pattern = np.multiply.outer(pattern, line)
    expected[tuple(slice(c - half, c + half + 1) for _ in range(ndim))] = pattern
    assert np.array_equal(r.mean_map, expected)
    assert r.units.tolist() == [[c] * ndim]
    assert r.regions.tolist() == [[[c - half, c + half]] * ndim]


@pytest.mark.parametrize("k,n", [(3, 2), (3, 8), (5, 4)], ids=["k3n2", "k3n8", "k5n4"])
def test_variance_of_the_all_ones_erf_is_n_k2_minus_1_over_12(k, n):
    size = n * (k - 1) + 5
    model, graph = conv_stack(n, k, ndim=2, size=size)
    r = erf.measure(model.double(), (1, 1, size, size), analysis=graph, init="ones")
    var = n * (k * k - 1) / 12
    assert moment_sigma(r.mean_map).sigma == pytest.approx((math.sqrt(var),) * 2, rel=1e-12)
    assert r.metrics["moments"]["sigma"] == pytest.approx([math.sqrt(var)] * 2, rel=1e-12)


def test_gaussian_fit_sigma_squared_tends_to_n_k2_minus_1_over_12():
    # central limit: the fitted Gaussian's sigma^2 approaches the variance n(k^2-1)/12 of the
    # sum of n uniform steps, with a relative error of order 1/n (measured: about 0.4/n)
    k, errors = 3, {}
    for n in (2, 4, 16):
        size = 2 * n + 5
        model, graph = conv_stack(n, k, ndim=1, size=size)
        r = erf.measure(model.double(), (1, 1, size), analysis=graph, init="ones")
        errors[n] = abs(gaussian_fit(r.mean_map).sigma[0] ** 2 / (n * (k * k - 1) / 12) - 1)
    assert errors[16] < errors[4] / 3 < errors[2] / 6
    assert all(e * n < 0.5 for n, e in errors.items())


def test_erf_size_grows_as_sqrt_n_for_uniform_stacks():
    sigmas = {}
    for n in (4, 16):
        model, graph = conv_stack(n, 3, ndim=1, size=2 * n + 5)
        r = erf.measure(model.double(), (1, 1, 2 * n + 5), analysis=graph, init="ones")
        sigmas[n] = r.metrics["moments"]["sigma"][0]
    assert sigmas[16] / sigmas[4] == pytest.approx(2.0, rel=1e-12)  # sqrt(16 / 4)


def test_random_weight_linear_stack_has_the_box_shape_in_expectation():
    # i.i.d. zero-mean weights of variance C, c channels, the impulse on every output channel,
    # g^2 summed over input channels: E = C^n c^(n+1) times the box power (cross terms vanish
    # in expectation; c output, n-1 hidden and c input channels are summed). Monte Carlo over
    # 200 weight draws of an 8-channel stack: the relative standard error per position is
    # about 4% (seen over seeds), so 15% is close to 4 standard errors.
    k, n, c, size = 3, 2, 8, 9
    model, graph = conv_stack(n, k, ndim=1, channels=c, size=size)
    std = 0.5
    r = erf.measure(model.double(), (1, c, size), analysis=graph, init=erf.init.normal_(std),
                    samples=200, variants=("squared",), seed=1)
    expected = np.zeros(size)
    expected[2:7] = box_power(k, n) * std ** (2 * n) * c ** (n + 1)
    got = r.squared[0]
    assert np.all(got[:2] == 0) and np.all(got[7:] == 0)
    assert got[2:7] / expected[2:7] == pytest.approx(np.ones(5), abs=0.15)
    # the shape (normalised) matches more tightly than the scale
    assert got / got.sum() == pytest.approx(expected / expected.sum(), abs=0.02)
