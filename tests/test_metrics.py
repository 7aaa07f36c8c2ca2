"""erf.metrics against hand derivations and independent oracles (DESIGN.md §7)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from analytic.errors import ErfError
from erf import metrics as M
from erf.metrics import MetricError


def box(k: int, n: int) -> np.ndarray:
    """Gradient of an n-layer stack of all-ones length-k kernels: the n-fold box convolution."""
    v = np.ones(1)
    for _ in range(n):
        v = np.convolve(v, np.ones(k))
    return v


def outer(*vs: np.ndarray) -> np.ndarray:
    out = vs[0]
    for v in vs[1:]:
        out = np.multiply.outer(out, v)
    return out


def test_box_oracle_helper():
    np.testing.assert_array_equal(box(3, 2), [1, 2, 3, 2, 1])
    np.testing.assert_array_equal(box(3, 3), [1, 3, 6, 7, 6, 3, 1])
    np.testing.assert_array_equal(box(3, 6)[:7], [1, 6, 21, 50, 90, 126, 141])  # (1+x+x^2)^6


# ---- moments: exact on the oracle ----


@pytest.mark.parametrize(
    "axes",
    [((3, 2),), ((3, 3),), ((5, 4),), ((3, 3), (3, 3)), ((3, 2), (7, 5)), ((2, 3), (3, 4), (5, 2))],
    ids=lambda axes: "x".join(f"k{k}n{n}" for k, n in axes),
)
def test_moment_sigma_exact_on_box_oracle(axes):
    erf = outer(*(box(k, n) for k, n in axes))
    got = M.moment_sigma(erf)
    for axis, (k, n) in enumerate(axes):
        assert got.sigma[axis] ** 2 == pytest.approx(n * (k * k - 1) / 12, rel=1e-12)
        assert got.mean[axis] == pytest.approx(n * (k - 1) / 2, rel=1e-12)  # the middle index


# ---- Gaussian fit ----


def test_gaussian_fit_recovers_a_sampled_gaussian():
    y, x = np.meshgrid(np.arange(30.0), np.arange(24.0), indexing="xy")
    g = 3.0 * np.exp(-0.5 * (((x - 10.3) / 2.5) ** 2 + ((y - 12.7) / 4.0) ** 2))
    fit = M.gaussian_fit(g)
    np.testing.assert_allclose(fit.sigma, (2.5, 4.0), rtol=1e-6)
    np.testing.assert_allclose(fit.center, (10.3, 12.7), rtol=1e-6)
    assert fit.amplitude == pytest.approx(3.0, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    fit = M.gaussian_fit(g + 0.5, offset=True)
    np.testing.assert_allclose(fit.sigma, (2.5, 4.0), rtol=1e-6)
    assert fit.offset == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("ndim", [1, 2])
def test_gaussian_fit_sigma_tends_to_box_variance(ndim):
    # CLT: the 30-fold box convolution is close to a Gaussian of variance n (k^2-1)/12 = 20;
    # the fitted sigma^2 is within 2% of it (1.3% in 1-D, 1.6% in 2-D at n=30, shrinking with n).
    k, n = 3, 30
    erf = outer(*[box(k, n)] * ndim)
    fit = M.gaussian_fit(erf)
    for s in fit.sigma:
        assert s**2 == pytest.approx(n * (k * k - 1) / 12, rel=0.02)
    assert fit.r2 > 0.999


def test_gaussian_fit_anisotropic_box():
    erf = outer(box(3, 30), box(3, 40))  # variances 20 and 80/3
    fit = M.gaussian_fit(erf)
    assert fit.sigma[0] ** 2 == pytest.approx(20, rel=0.02)
    assert fit.sigma[1] ** 2 == pytest.approx(80 / 3, rel=0.02)


# ---- Luo et al. area ----


def test_luo_area_box_2d_by_hand():
    # [1,3,6,7,6,3,1] outer itself: center 49, threshold 0.0455*49 = 2.2295; the only products
    # <= 2.2295 are 1*1 at the four corners, so 49 - 4 = 45 positions.
    a = box(3, 3)
    got = M.luo_area(np.outer(a, a))
    assert got.count == 45
    assert got.size == pytest.approx(math.sqrt(45))
    assert got.threshold == pytest.approx(2.2295)
    assert got.center == (3, 3)


def test_luo_area_box_1d_by_hand():
    # (1+x+x^2)^6: center 141, threshold 6.4155; 1, 6, 6, 1 fall below: 13 - 4 = 9, size = count
    got = M.luo_area(box(3, 6))
    assert (got.count, got.size) == (9, 9.0)


def test_luo_area_center_and_strict_threshold():
    erf = np.array([0.01, 0.05, 1.0, 0.04, 0.046])
    assert M.luo_area(erf).count == 3  # > 0.0455: 0.05, 1, 0.046
    assert M.luo_area(erf, center=(1,)).count == 5  # > 0.0455 * 0.05
    assert M.luo_area(np.array([1.0, 0.0455])).count == 1  # at the threshold is not above
    assert M.luo_area(np.ones((3, 3, 3))).size == pytest.approx(3.0)  # cube root in 3-D


def test_luo_area_default_center_is_the_maximum():
    erf = np.zeros((5, 7))
    erf[1, 5], erf[1, 4] = 2.0, 1.0
    assert M.luo_area(erf).center == (1, 5)


def test_luo_area_zero_center_is_an_error():
    with pytest.raises(MetricError, match=r"luo_area: the map is zero at center \(0, 0\)"):
        M.luo_area(np.eye(3)[::-1], center=(0, 0))


# ---- RepLKNet high-contribution area ratio ----


def sides_and_ratios(result):
    return [(r.side, r.ratio) for r in result]


@pytest.mark.parametrize("log", [True, False])
def test_replknet_spike_gives_the_smallest_square(log):
    erf = np.zeros((9, 9))
    erf[4, 4] = 5.0
    # the script starts at side 3 (i = 1), never side 1
    assert sides_and_ratios(M.replknet_area_ratio(erf, log=log)) == [(3, 9 / 81)] * 4


def test_replknet_uniform_map_by_hand():
    # 11x11 uniform: square fractions 9/121, 25/121=.207, 49/121=.405, 81/121=.669, 1
    got = M.replknet_area_ratio(np.full((11, 11), 7.0))
    assert sides_and_ratios(got) == [(5, 25 / 121), (7, 49 / 121), (9, 81 / 121), (11, 1.0)]
    assert [r.threshold for r in got] == [0.2, 0.3, 0.5, 0.99]


def test_replknet_strict_threshold_and_clipped_growth_1d():
    # ones(10), center 5: widths 3, 5, 7, 9 hold 0.3, 0.5, 0.7, 0.9; "strictly more than t"
    # skips the ties at 0.3 and 0.5; 0.99 needs the square past the map's edge (clipped to it,
    # where the script would give up and return None).
    got = M.replknet_area_ratio(np.ones(10), thresholds=(0.2, 0.3, 0.5, 0.99))
    assert sides_and_ratios(got) == [(3, 0.3), (5, 0.5), (7, 0.7), (11, 1.0)]


def test_replknet_non_square_map_clips_per_axis():
    # 3x9 uniform, center (1, 4): side 3 holds 9/27; side 5 is clipped to 3x5 = 15/27 > 0.5
    got = M.replknet_area_ratio(np.ones((3, 9)), thresholds=(0.3, 0.5))
    assert sides_and_ratios(got) == [(3, 9 / 27), (5, 15 / 27)]


def test_replknet_log_transform_by_hand():
    erf = np.array([9.0, 0.0, 99.0, 0.0, 9.0])
    # log10(x+1)/max = [.5, 0, 1, 0, .5]: side 3 holds 1/2, not more than 0.5 -> side 5
    assert sides_and_ratios(M.replknet_area_ratio(erf, (0.3, 0.5))) == [(3, 0.6), (5, 1.0)]
    # raw: side 3 holds 99/117 = .846
    got = M.replknet_area_ratio(erf, (0.5, 0.99), log=False)
    assert sides_and_ratios(got) == [(3, 0.6), (5, 1.0)]


def test_replknet_explicit_center():
    erf = np.zeros((9, 9))
    erf[1, 1] = 1.0
    assert M.replknet_area_ratio(erf, (0.5,))[0].side == 7  # from (4, 4): Chebyshev distance 3
    assert M.replknet_area_ratio(erf, (0.5,), center=(1, 1))[0].side == 3


def test_replknet_bad_threshold():
    with pytest.raises(MetricError, match=r"replknet_area_ratio: thresholds must lie in \[0, 1\)"):
        M.replknet_area_ratio(np.ones((3, 3)), thresholds=(0.5, 1.0))


def script_square(data: np.ndarray, t: float):
    """The published loop, written out independently: slices around (h//2, w//2), i from 1."""
    h, w = data.shape
    total = data.sum()
    for i in range(1, h // 2):
        if data[h // 2 - i : h // 2 + i + 1, w // 2 - i : w // 2 + i + 1].sum() / total > t:
            return 2 * i + 1, (2 * i + 1) ** 2 / (h * w)
    return None


square_maps = (
    st.integers(3, 12)
    .flatmap(
        lambda n: hnp.arrays(
            np.float64, (n, n), elements=st.one_of(st.just(0.0), st.floats(1e-3, 100)))
    )
    .map(lambda a: np.where(a < 1e-6, 0.0, a))  # so that the script's log10(x + 1) is > 0
    .filter(lambda a: a.any())
)


@settings(max_examples=60, deadline=None)
@given(square_maps)
def test_replknet_agrees_with_the_script_where_it_answers(erf):
    data = np.log10(erf + 1)
    data = data / data.max()
    for r in M.replknet_area_ratio(erf):
        expected = script_square(data, r.threshold)
        if expected is not None:
            assert r.side == expected[0]
            assert r.ratio == pytest.approx(expected[1], rel=1e-12)


# ---- radial mass ----


def test_radial_mass_symmetric_map_by_hand():
    erf = np.zeros((5, 5))
    erf[2, 2] = 4.0
    erf[[1, 3, 2, 2], [2, 2, 1, 3]] = 1.0  # distance 1
    erf[[1, 1, 3, 3], [1, 3, 1, 3]] = 0.5  # distance sqrt(2); total 4 + 4 + 2 = 10
    got = M.radial_mass(erf, [0, 0.5, 1, 1.4, 1.5, 3])
    np.testing.assert_allclose(got, [0.4, 0.4, 0.8, 0.8, 1.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(M.mass_radius(erf, [0.4, 0.5, 0.8, 0.9]), [0, 1, 1, math.sqrt(2)])
    assert M.mass_radius(erf, 1.0) == pytest.approx(math.sqrt(2))


def test_radial_mass_fractional_center():
    erf = np.array([1.0, 1.0])
    np.testing.assert_allclose(M.radial_mass(erf, [0.4, 0.5], center=(0.5,)), [0, 1])
    assert M.mass_radius(erf, 0.5, center=(0.5,)) == 0.5


# ---- ERF / RF ----


def test_rf_ratio_by_hand():
    a = box(3, 3)
    erf = np.outer(a, a)  # Luo area 45 (above), RF 7x7 = 49
    for rf in [(7, 7), ((0, 6), (0, 6)), (7, (10, 16))]:
        got = M.rf_ratio(erf, rf)
        assert got.area_ratio == pytest.approx(45 / 49)
        assert got.size_ratio == pytest.approx(math.sqrt(45) / 7)
        assert (got.erf_area, got.rf_area, got.reason) == (45, 49, "")
    got = M.rf_ratio(np.array([0.01, 0.05, 1.0, 0.04, 0.046]), (5,))
    assert (got.size_ratio, got.area_ratio) == (0.6, 0.6)


def test_rf_ratio_global_is_nan_with_reason():
    got = M.rf_ratio(np.ones((4, 4)), (None, 4))
    assert math.isnan(got.size_ratio) and math.isnan(got.area_ratio)
    assert got.rf_area is None and "global along axis [0]" in got.reason


@pytest.mark.parametrize(
    "rf, match",
    [((7,), r"one entry per axis \(2\)"), ((0, 3), "axis 0 has size 0"), ((3, "x"), "axis 1")],
)
def test_rf_ratio_bad_rf(rf, match):
    with pytest.raises(MetricError, match=match):
        M.rf_ratio(np.ones((3, 3)), rf)


# ---- summarize ----


def test_summarize_is_plain_json():
    a = box(3, 3)
    erf = np.outer(a, a)
    out = M.summarize(erf, region=(7, 7))
    again = json.loads(json.dumps(out, allow_nan=False))
    assert again == out
    assert out["luo"]["count"] == 45 and out["rf_ratio"]["area_ratio"] == pytest.approx(45 / 49)
    assert out["moments"]["sigma"] == pytest.approx([math.sqrt(2)] * 2)
    assert [r["threshold"] for r in out["replknet"]] == [0.2, 0.3, 0.5, 0.99]
    assert "rf_ratio" not in M.summarize(erf)
    glob = M.summarize(erf, region=(None, 7))["rf_ratio"]
    assert glob["size_ratio"] is None and "global" in glob["reason"]
    json.dumps(M.summarize(np.ones(6)), allow_nan=False)  # 1-D, constant: r2 NaN -> None


# ---- validation ----

METRICS = {
    "luo_area": M.luo_area,
    "moment_sigma": M.moment_sigma,
    "gaussian_fit": M.gaussian_fit,
    "replknet_area_ratio": M.replknet_area_ratio,
    "radial_mass": lambda a: M.radial_mass(a, [1.0]),
    "mass_radius": lambda a: M.mass_radius(a, 0.5),
    "rf_ratio": lambda a: M.rf_ratio(a, [3] * a.ndim),
    "summarize": M.summarize,
}


@pytest.mark.parametrize("name", METRICS)
def test_invalid_maps_are_loud(name):
    fn = METRICS[name]
    bad = np.ones((4, 4))
    bad[0, 0], bad[1, 2], bad[3, 3] = np.nan, np.inf, -np.inf
    with pytest.raises(MetricError, match=rf"^{name}: the ERF map has 3 non-finite entries"):
        fn(bad)
    with pytest.raises(MetricError, match=rf"^{name}: the ERF map is all zero"):
        fn(np.zeros((3, 3)))
    with pytest.raises(
        MetricError, match=rf"^{name}: an ERF map must be 1-, 2- or 3-D.*\(2, 2, 2, 2\)"
    ):
        fn(np.ones((2, 2, 2, 2)))
    with pytest.raises(MetricError, match=rf"^{name}: an ERF map must be 1-, 2- or 3-D"):
        fn(np.float64(1.0))
    with pytest.raises(MetricError, match=rf"^{name}: the ERF map has 1 negative entries"):
        fn(np.array([1.0, -0.5, 2.0]))


def test_metric_error_is_a_library_value_error():
    assert issubclass(MetricError, ErfError) and issubclass(MetricError, ValueError)


@pytest.mark.parametrize("center, match", [((1,), "2 integer indices"), ((0, 5), "outside")])
def test_bad_center(center, match):
    with pytest.raises(MetricError, match=match):
        M.replknet_area_ratio(np.ones((3, 3)), center=center)


# ---- properties ----

maps = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9),
    elements=st.one_of(st.just(0.0), st.floats(1e-3, 1000)),  # no subnormal thresholds
).filter(lambda a: a.any())
powers_of_two = st.integers(1, 30).map(lambda k: 2.0**k)  # exact scaling in floating point
thresholds = st.lists(st.floats(0, 0.999), min_size=1, max_size=6).map(sorted)


@given(maps, thresholds, powers_of_two)
def test_replknet_ratio_bounded_monotone_and_scale_free_without_log(erf, ts, c):
    for log in (True, False):
        got = M.replknet_area_ratio(erf, ts, log=log)
        ratios = [r.ratio for r in got]
        assert all(0 < r <= 1 for r in ratios)
        assert ratios == sorted(ratios) and [r.side for r in got] == sorted(r.side for r in got)
    assert M.replknet_area_ratio(c * erf, ts, log=False) == M.replknet_area_ratio(
        erf, ts, log=False
    )


@given(maps, st.lists(st.floats(0, 20), min_size=1, max_size=8).map(sorted), powers_of_two)
def test_radial_mass_bounded_monotone_scale_free(erf, radii, c):
    got = M.radial_mass(erf, radii)
    assert np.all((got >= 0) & (got <= 1)) and np.all(np.diff(got) >= 0)
    np.testing.assert_allclose(M.radial_mass(c * erf, radii), got, rtol=1e-12)
    f = np.linspace(0, 1, 7)
    assert np.all(M.radial_mass(erf, M.mass_radius(erf, f)) >= f - 1e-9)


@given(maps, powers_of_two)
def test_luo_and_moments_scale_free(erf, c):
    assert M.luo_area(c * erf) == M.luo_area(erf)._replace(threshold=c * M.luo_area(erf).threshold)
    np.testing.assert_allclose(M.moment_sigma(c * erf).sigma, M.moment_sigma(erf).sigma, rtol=1e-9)
    assert 1 <= M.luo_area(erf).count <= erf.size


@given(maps, st.data())
def test_rf_area_ratio_within_one_when_contained(erf, data):
    # zero the map outside a random box, then the box is an RF that contains the ERF
    box_ = []
    for n in erf.shape:
        lo = data.draw(st.integers(0, n - 1))
        box_.append((lo, data.draw(st.integers(lo, n - 1))))
    inside = np.zeros_like(erf)
    sl = tuple(slice(lo, hi + 1) for lo, hi in box_)
    inside[sl] = erf[sl]
    if inside.any():
        got = M.rf_ratio(inside, box_)
        assert 0 < got.area_ratio <= 1 and 0 < got.size_ratio <= 1
