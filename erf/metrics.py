"""Metrics of effective-receptive-field maps: pure functions on non-negative numpy arrays.

A map is what the measurement produces for one unit: the input-gradient magnitude summed over
channels (and averaged over samples), one entry per input position, 1-, 2- or 3-D. Indices are
array indices (axis 0 first); a ``center`` is one index per axis. Sources:

- Luo, Li, Urtasun, Zemel, "Understanding the Effective Receptive Field in Deep Convolutional
  Neural Networks", NeurIPS 2016: the ERF area above (1 - 95.45%) of the center value, ERF size
  = sqrt(area), the Gaussian shape and the ERF/RF ratio.
- Ding et al., "Scaling Up Your Kernels to 31x31: Revisiting Large Kernel Design in CNNs"
  (RepLKNet), CVPR 2022, and its script ``erf/analyze_erf.py`` (DingXiaoH/RepLKNet-pytorch):
  the high-contribution area ratio.

scipy is imported only by :func:`gaussian_fit`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from analytic.errors import ErfError

LUO_FRACTION = 0.0455  # 1 - 95.45% (the two-sigma mass of a Gaussian), Luo et al. 2016
REPLKNET_THRESHOLDS = (0.2, 0.3, 0.5, 0.99)  # Ding et al. 2022, analyze_erf.py
SUPPORTED_NDIM = (1, 2, 3)


class MetricError(ErfError, ValueError):
    """An ERF map (or an argument of a metric) cannot be measured; the message names the metric."""


class LuoArea(NamedTuple):
    count: int  # positions whose value is above threshold
    size: float  # count ** (1 / ndim): sqrt(count) in 2-D, count itself in 1-D
    threshold: float  # LUO_FRACTION * map[center]
    center: tuple[int, ...]


class GaussianFit(NamedTuple):
    sigma: tuple[float, ...]
    center: tuple[float, ...]
    amplitude: float
    offset: float
    r2: float


class Moments(NamedTuple):
    sigma: tuple[float, ...]
    mean: tuple[float, ...]


class AreaRatio(NamedTuple):
    threshold: float
    side: int  # nominal side 2*i + 1 of the centered square (cube in 3-D)
    ratio: float  # positions inside the square (clipped to the map) / positions in the map


class RFRatio(NamedTuple):
    size_ratio: float  # ERF size / RF size, NaN when the RF is global
    area_ratio: float  # ERF area / RF area, NaN when the RF is global
    erf_area: int
    rf_area: int | None
    reason: str  # why the ratios are NaN; "" otherwise


# ---- validation ----


def _check_map(erf, metric: str) -> np.ndarray:
    a = np.asarray(erf, dtype=np.float64)
    if a.ndim not in SUPPORTED_NDIM:
        raise MetricError(
            f"{metric}: an ERF map must be 1-, 2- or 3-D (one axis per spatial input axis), "
            f"got shape {a.shape}; sum over batch and channels first"
        )
    if a.size == 0:
        raise MetricError(f"{metric}: the ERF map is empty (shape {a.shape})")
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise MetricError(
            f"{metric}: the ERF map has {bad} non-finite entries (NaN/inf) of {a.size}; "
            "drop the samples whose gradients overflowed, or measure in float64"
        )
    neg = int(np.count_nonzero(a < 0))
    if neg:
        raise MetricError(
            f"{metric}: the ERF map has {neg} negative entries of {a.size} (min {a.min():g}); "
            "metrics take magnitudes: pass |gradient| or gradient**2"
        )
    if not np.any(a):
        raise MetricError(
            f"{metric}: the ERF map is all zero (shape {a.shape}); the unit does not depend on "
            "the input (dead unit, or wrong output index)"
        )
    return a


def _index_center(a: np.ndarray, center, metric: str) -> tuple[int, ...]:
    """An integer center inside the map; None means the middle index n // 2 per axis."""
    if center is None:
        return tuple(n // 2 for n in a.shape)
    c = tuple(center)
    if len(c) != a.ndim or not all(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in c
    ):
        raise MetricError(f"{metric}: center must be {a.ndim} integer indices, got {center!r}")
    if not all(0 <= x < n for x, n in zip(c, a.shape, strict=True)):
        raise MetricError(f"{metric}: center {c} lies outside the map of shape {a.shape}")
    return tuple(int(x) for x in c)


def _float_center(a: np.ndarray, center, metric: str) -> np.ndarray:
    if center is None:
        return np.array([n // 2 for n in a.shape], dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (a.ndim,) or not np.all(np.isfinite(c)):
        raise MetricError(f"{metric}: center must be {a.ndim} finite coordinates, got {center!r}")
    return c


def _distances(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    grids = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in a.shape), indexing="ij")
    return np.sqrt(sum((g - ci) ** 2 for g, ci in zip(grids, c, strict=True)))


# ---- Luo et al. 2016 ----


def luo_area(erf, center=None, fraction: float = LUO_FRACTION) -> LuoArea:
    """ERF area and size of Luo et al. (NeurIPS 2016).

    Counts the positions whose value is strictly above ``fraction`` (1 - 95.45% = 4.55%) of the
    value at ``center``; size = count ** (1/ndim) (the paper's sqrt(count) in 2-D, the count in
    1-D). ``center`` defaults to the location of the map's maximum (the first one in C order),
    not the geometric middle: the threshold is relative to the peak the unit actually has.
    """
    a = _check_map(erf, "luo_area")
    if not 0 < fraction < 1:
        raise MetricError(f"luo_area: fraction must lie in (0, 1), got {fraction!r}")
    if center is None:
        c = tuple(int(i) for i in np.unravel_index(int(np.argmax(a)), a.shape))
    else:
        c = _index_center(a, center, "luo_area")
    if a[c] <= 0:
        raise MetricError(
            f"luo_area: the map is zero at center {c}, so the threshold is 0; pass the unit's "
            "center where its gradient is nonzero, or center=None for the maximum"
        )
    threshold = fraction * float(a[c])
    count = int(np.count_nonzero(a > threshold))
    return LuoArea(count, count ** (1.0 / a.ndim), threshold, c)


# ---- shape: moments and Gaussian fit ----


def moment_sigma(erf) -> Moments:
    """Per-axis mean and standard deviation of the map read as a distribution (map / sum).

    Closed form, no fit. Exact for the box-convolution oracle (DESIGN.md §7): an n-layer stack of
    all-ones k-kernels has variance n (k^2 - 1) / 12 per axis; Luo et al. 2016 §2 derive the
    Gaussian limit from the same sum of n independent uniform steps.
    """
    a = _check_map(erf, "moment_sigma")
    p = a / a.sum()
    means, sigmas = [], []
    for axis in range(a.ndim):
        marginal = p.sum(axis=tuple(i for i in range(a.ndim) if i != axis))
        x = np.arange(a.shape[axis], dtype=np.float64)
        mu = float(marginal @ x)
        means.append(mu)
        sigmas.append(math.sqrt(max(float(marginal @ (x - mu) ** 2), 0.0)))
    return Moments(tuple(sigmas), tuple(means))


def _gaussian(coords: np.ndarray, ndim: int, with_offset: bool):
    def model(_, amplitude, *rest):
        mu, sigma = rest[:ndim], rest[ndim : 2 * ndim]
        z = sum(((coords[i] - mu[i]) / sigma[i]) ** 2 for i in range(ndim))
        return amplitude * np.exp(-0.5 * z) + (rest[2 * ndim] if with_offset else 0.0)

    return model


def gaussian_fit(erf, offset: bool = False) -> GaussianFit:
    """Least-squares fit of an axis-aligned Gaussian ``A exp(-sum_i (x_i-mu_i)^2 / 2 s_i^2) [+ c]``.

    Luo et al. 2016 show the ERF is close to Gaussian; this measures its sigma per axis with
    ``scipy.optimize.curve_fit``, started from :func:`moment_sigma`. ``r2`` is the coefficient
    of determination 1 - SS_res / SS_tot over all positions (NaN for a constant map). For the
    box-convolution oracle sigma^2 tends to n (k^2 - 1) / 12 as n grows.
    """
    a = _check_map(erf, "gaussian_fit")
    from scipy.optimize import OptimizeWarning, curve_fit

    nd = a.ndim
    axes = (np.arange(n, dtype=np.float64) for n in a.shape)
    coords = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    m = moment_sigma(a)
    extent = float(max(a.shape))
    p0 = [float(a.max()), *m.mean, *(max(s, 0.5) for s in m.sigma)]
    lo = [0.0, *(-extent,) * nd, *(1e-3,) * nd]
    hi = [np.inf, *(2 * extent,) * nd, *(1e3 * extent,) * nd]
    if offset:
        p0, lo, hi = p0 + [0.0], lo + [-np.inf], hi + [np.inf]
    model = _gaussian(coords, nd, offset)
    y = a.ravel()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # covariance unused
            popt, _ = curve_fit(model, None, y, p0=p0, bounds=(lo, hi), maxfev=20000)
    except (RuntimeError, ValueError) as e:
        raise MetricError(f"gaussian_fit: the fit did not converge on shape {a.shape}: {e}") from e
    residual = y - model(None, *popt)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(residual @ residual) / ss_tot if ss_tot > 0 else math.nan
    return GaussianFit(
        sigma=tuple(float(s) for s in popt[1 + nd : 1 + 2 * nd]),
        center=tuple(float(x) for x in popt[1 : 1 + nd]),
        amplitude=float(popt[0]),
        offset=float(popt[-1]) if offset else 0.0,
        r2=r2,
    )


# ---- Ding et al. 2022 (RepLKNet) ----


def replknet_area_ratio(
    erf, thresholds: Sequence[float] = REPLKNET_THRESHOLDS, center=None, log: bool = True
) -> tuple[AreaRatio, ...]:
    """RepLKNet's high-contribution area ratio (Ding et al., CVPR 2022, ``erf/analyze_erf.py``).

    As in the script: the map becomes log10(x + 1) / max (``log=False`` skips this); around the
    center (default index n // 2 per axis, the script's ``h // 2, w // 2``) squares of side
    2i + 1 for i = 1, 2, ... are tried in turn, the side-1 square never; the first whose sum is
    strictly greater than t times the total is taken, and ratio = its area / the map's area.
    Deviations: the script stops at i = h // 2 - 1 and returns None (its caller then crashes);
    here the square keeps growing, clipped to the map, until it covers it all, so every t < 1
    gets an answer, and ``ratio`` counts the positions of the clipped square (equal to the
    script's (side/h)(side/w) whenever the square fits, which is always the case there). Works
    per axis, so non-square maps (where the script's slicing wraps) and 1-D / 3-D maps are
    handled. log10(x + 1) is computed as log1p(x) / ln 10, so entries below ~1e-16 are not
    rounded to 0. Not invariant to scaling the map when ``log`` is on (log10(x+1) is not).
    """
    a = _check_map(erf, "replknet_area_ratio")
    ts = [float(t) for t in thresholds]
    if not all(0 <= t < 1 for t in ts):
        raise MetricError(f"replknet_area_ratio: thresholds must lie in [0, 1), got {thresholds}")
    c = _index_center(a, center, "replknet_area_ratio")
    if log:
        a = np.log1p(a) / math.log(10.0)  # log10(x + 1), without rounding tiny x to 0
        a = a / a.max()
    grids = np.meshgrid(*(np.arange(n) for n in a.shape), indexing="ij")
    offsets = [np.abs(g - ci) for g, ci in zip(grids, c, strict=True)]
    cheb = np.max(np.stack(offsets), axis=0).ravel()  # Chebyshev distance to the center
    mass = np.cumsum(np.bincount(cheb, weights=a.ravel()))  # mass within half-width i
    count = np.cumsum(np.bincount(cheb))  # positions within half-width i
    frac = mass / mass[-1]
    frac[-1] = 1.0  # the whole map holds all of it, exactly
    last = len(frac) - 1  # the half-width that covers the whole map; frac[last] = 1 > t
    out = []
    for t in ts:
        over = np.flatnonzero(frac[1:] > t)  # i >= 1, as in the script
        i = 1 + int(over[0]) if over.size else 1  # none only for a one-position map
        out.append(AreaRatio(t, 2 * i + 1, float(count[min(i, last)]) / a.size))
    return tuple(out)


# ---- radial mass ----


def radial_mass(erf, radii, center=None) -> np.ndarray:
    """Fraction of the map's total within Euclidean distance <= rho of ``center``, per rho.

    ``center`` may be fractional (e.g. the analytic region's center, DESIGN.md eq. 11); it
    defaults to index n // 2 per axis. The cumulative radial profile Luo et al. 2016 plot.
    """
    a = _check_map(erf, "radial_mass")
    c = _float_center(a, center, "radial_mass")
    r = np.asarray(radii, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise MetricError(f"radial_mass: radii must be finite, got {radii!r}")
    d = _distances(a, c).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(a.ravel()[order])])
    idx = np.searchsorted(d[order], r, side="right")
    out = cum[idx] / cum[-1]
    return np.minimum(out, 1.0)


def mass_radius(erf, fraction, center=None) -> np.ndarray | float:
    """Smallest distance rho (one of the positions' distances) such that radial_mass >= fraction.

    Inverse of :func:`radial_mass`; ``fraction`` is a number or an array in [0, 1]. Mass ties are
    compared with a relative tolerance of 1e-12 so that e.g. 0.4 of a hand-made map is reached
    at the radius holding exactly 0.4.
    """
    a = _check_map(erf, "mass_radius")
    c = _float_center(a, center, "mass_radius")
    f = np.asarray(fraction, dtype=np.float64)
    if not np.all((f >= 0) & (f <= 1)):
        raise MetricError(f"mass_radius: fractions must lie in [0, 1], got {fraction!r}")
    d = _distances(a, c).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(a.ravel()[order])
    cum = cum / cum[-1]
    idx = np.searchsorted(cum, f * (1 - 1e-12), side="left")
    out = d[order][np.minimum(idx, d.size - 1)]
    return float(out) if out.ndim == 0 else out


# ---- ERF / RF ----


def _rf_sizes(rf, ndim: int) -> tuple[list[int | None], int | None]:
    """Per-axis RF sizes from ints, inclusive (lo, hi) boxes or None (= global along that axis)."""
    if isinstance(rf, (int, np.integer)) or len(rf) != ndim:
        raise MetricError(f"rf_ratio: rf needs one entry per axis ({ndim}), got {rf!r}")
    sizes: list[int | None] = []
    for axis, entry in enumerate(rf):
        if entry is None or (isinstance(entry, float) and math.isinf(entry)):
            sizes.append(None)
        elif isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
            sizes.append(int(entry))
        elif isinstance(entry, Sequence) and len(entry) == 2:
            lo, hi = (int(x) for x in entry)
            sizes.append(hi - lo + 1)
        else:
            raise MetricError(
                f"rf_ratio: rf axis {axis} must be a size, an inclusive (lo, hi) region or "
                f"None (global), got {entry!r}"
            )
        if sizes[-1] is not None and sizes[-1] < 1:
            raise MetricError(f"rf_ratio: rf axis {axis} has size {sizes[-1]} < 1 ({entry!r})")
    area = None if None in sizes else math.prod(sizes)  # type: ignore[arg-type]
    return sizes, area


def rf_ratio(erf, rf, center=None) -> RFRatio:
    """ERF / RF ratios in Luo et al.'s sense: ERF area = :func:`luo_area` count.

    ``rf`` has one entry per axis: the RF size, an inclusive region (lo, hi) (clipped to the
    input, as the analytic regions are), or None for an axis along which the unit is global.
    size_ratio = ERF size / RF size with size = area ** (1/ndim) for both; area_ratio = ERF area
    / RF area. A global RF gives NaN for both, with ``reason``: its extent is the input's, so
    the ratio would measure the input size, not the unit.
    """
    a = _check_map(erf, "rf_ratio")
    sizes, rf_area = _rf_sizes(rf, a.ndim)
    luo = luo_area(a, center)
    if rf_area is None:
        axes = [i for i, s in enumerate(sizes) if s is None]
        reason = (
            f"RF is global along axis {axes}: its extent is the input's, so ERF/RF would "
            "measure the input size, not the unit"
        )
        return RFRatio(math.nan, math.nan, luo.count, None, reason)
    area_ratio = luo.count / rf_area
    return RFRatio(area_ratio ** (1.0 / a.ndim), area_ratio, luo.count, rf_area, "")


# ---- all together ----


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (tuple, list, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else float(x)
    return x


def summarize(erf, center=None, region=None) -> dict:
    """All metrics of one map as a JSON-serializable dict (plain ints, floats, lists; NaN -> None).

    ``center`` (integer indices) goes to every metric; None keeps each one's default (the
    maximum for Luo, the middle index for RepLKNet and the radial profile). ``region`` is the
    ``rf`` of :func:`rf_ratio`; without it the ratio is left out. A Gaussian fit that does not
    converge is reported as ``{"error": message}`` rather than raised.
    """
    a = _check_map(erf, "summarize")
    luo = luo_area(a, center)
    mom = moment_sigma(a)
    try:
        g = gaussian_fit(a)._asdict()
    except MetricError as e:
        g = {"error": str(e)}
    radii = [float(r) for r in 2.0 ** np.arange(int(math.log2(max(a.shape))) + 1)]
    fractions = [0.5, 0.9, 0.99]
    out = {
        "shape": a.shape,
        "total": float(a.sum()),
        "luo": {**luo._asdict(), "fraction": LUO_FRACTION},
        "moments": mom._asdict(),
        "gaussian": g,
        "replknet": [r._asdict() for r in replknet_area_ratio(a, center=center)],
        "radial": {
            "radii": radii,
            "mass": radial_mass(a, radii, center),
            "fractions": fractions,
            "radius": mass_radius(a, fractions, center),
        },
    }
    if region is not None:
        out["rf_ratio"] = rf_ratio(a, region, center)._asdict()
    return _plain(out)
