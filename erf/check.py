"""``erf.check``: do the measured gradients stay inside the exact analytic regions?

Containment: for every unit and sample, every input position whose |gradient| (summed over
channels, averaged over batch entries) exceeds ``tol`` times that unit's maximum must lie
inside the unit's exact box (DESIGN.md §4). A violation is a wrong rule, a non-local op
modelled as local, or a model that is not what was analysed. The gradients are computed in
float64 (torch: a float64 copy of the model; JAX: ``jax.enable_x64`` around the run), where
positions outside the dependency set get exactly zero, so the default ``tol`` only guards
against a backend that rounds differently.

Tightness: over the samples, whether each unit's box edges were reached (some position on the
edge face got a gradient above the tolerance). Dilation gaps and max-pool routing make the
support sparse inside the box; its extreme rows and columns should still be hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from analytic.analysis import Analysis

from . import engine

DEFAULT_TOL = 1e-9


class Violation(NamedTuple):
    """A gradient outside a unit's box: ``index`` along input ``axis`` lies outside ``region``
    (lo, hi) of that axis (None: the unit reads no input); ``value`` = the largest |gradient|
    there relative to the unit's maximum, over samples."""

    unit: tuple[int, ...]
    axis: int
    index: int
    region: tuple[int, int] | None
    value: float


@dataclass(frozen=True, eq=False)
class CheckResult:
    """The containment check. ``ok``: no violation and every gradient finite.
    ``edges`` (k, D, 2): whether each unit's lo/hi edge along each axis was reached in some
    sample; ``tightness``: per axis, the fraction of units (with a non-empty box) whose lo and
    hi edges were reached."""

    ok: bool
    violations: list[Violation]
    tightness: dict
    edges: np.ndarray
    units: np.ndarray
    regions: np.ndarray
    nonfinite: int
    tol: float
    analysis: Analysis
    settings: dict = field(default_factory=dict)

    @property
    def tight(self) -> bool:
        """Every unit reached every edge of its box in some sample."""
        full = np.all(self.regions[:, :, 0] <= self.regions[:, :, 1], axis=1)
        return bool(self.edges[full].all())

    def summary(self, limit: int = 10) -> str:
        node = self.analysis.node()
        s = self.settings
        k = len(self.units)
        lines = [f"containment check at {node.path or node.name} ({k} units, "
                 f"{s.get('samples')} samples, {s.get('dtype')}, tol {self.tol:g} of each "
                 f"unit's max): " + ("OK, every gradient inside its exact region" if self.ok
                                     else "FAILED")]
        if self.violations:
            bad_units = len({v.unit for v in self.violations})
            lines.append(f"  {len(self.violations)} positions outside the region, "
                         f"{bad_units} of {k} units:")
            for v in self.violations[:limit]:
                region = "empty" if v.region is None else f"[{v.region[0]},{v.region[1]}]"
                lines.append(f"    unit {list(v.unit)} axis {v.axis}: gradient at index "
                             f"{v.index} (relative {v.value:.3g}), region {region}")
            if len(self.violations) > limit:
                lines.append(f"    ... {len(self.violations) - limit} more")
        if self.nonfinite:
            lines.append(f"  {self.nonfinite} (unit, sample) gradients had NaN/inf entries: "
                         "containment cannot be verified for them")
        lo, hi = self.tightness["lo"], self.tightness["hi"]
        lines.append("  tightness (units reaching their box edges, per axis): "
                     + "; ".join(f"axis {a}: lo {x:.0%} hi {y:.0%}"
                                 for a, (x, y) in enumerate(zip(lo, hi))))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"ok": self.ok, "tol": self.tol, "nonfinite": self.nonfinite,
                "units": self.units.tolist(), "regions": self.regions.tolist(),
                "violations": [v._asdict() for v in self.violations],
                "tightness": self.tightness, "edges": self.edges.tolist(),
                "settings": self.settings}


def check(model: Any, input_shape=None, *, output: str | None = None, units: Any = "grid:4",
          samples: int = 2, seed: int = 0, tol: float = DEFAULT_TOL, device: str = "cpu",
          framework: str | None = None, layout: str | None = None, inputs: Any = None,
          input_dist: str = "normal", init: Any = None, chunk: int | None = None,
          analysis: Any = None, progress: bool = False,
          allow_train_mode: bool = False) -> CheckResult:
    """Check that ``model``'s input gradients stay inside the exact analytic regions.

    Arguments as in :func:`erf.measure` (never packed: packing assumes what this checks).
    ``tol``: relative threshold (to each unit's maximum |gradient| in that sample) above which
    a gradient counts as nonzero; computed in float64.
    """
    if not 0 <= tol < 1:
        raise engine.MeasureError(f"tol must lie in [0, 1), got {tol}")
    s = engine.setup(model, input_shape, inputs=inputs, output=output, units=units,
                     framework=framework, layout=layout, analysis=analysis, device=device,
                     dtype="float64", init=init, allow_train_mode=allow_train_mode)
    k, ndim = len(s.units), len(s.spatial_shape)
    edges = np.zeros((k, ndim, 2), bool)
    worst: dict[tuple[int, int, int], float] = {}
    nonfinite = 0
    for block in engine.run(s, samples=samples, seed=seed, input_dist=input_dist,
                            chunk=chunk, progress=progress, label="erf check"):
        maps = block.full_maps("abs", s.spatial_shape)
        for i, m, ok in zip(block.units, maps, block.finite):
            if not ok:
                nonfinite += 1
                continue
            _inspect(m, s.boxes[i], tol, i, worst, edges)
    violations = [Violation(tuple(int(x) for x in s.units[i]), a, idx, _region(s.boxes[i], a),
                            value) for (i, a, idx), value in sorted(worst.items())]
    full = np.all(s.boxes[:, :, 0] <= s.boxes[:, :, 1], axis=1)
    n_full = max(int(full.sum()), 1)
    tightness = {"lo": [float(edges[full, a, 0].sum() / n_full) for a in range(ndim)],
                 "hi": [float(edges[full, a, 1].sum() / n_full) for a in range(ndim)]}
    s.settings["tol"] = tol
    return CheckResult(not violations and not nonfinite, violations, tightness, edges, s.units,
                       s.boxes, nonfinite, tol, s.analysis, s.settings)


def _inspect(m: np.ndarray, box: np.ndarray, tol: float, unit: int,
             worst: dict[tuple[int, int, int], float], edges: np.ndarray) -> None:
    """Record one (unit, sample) map's positions outside its box, and the edges it reaches."""
    top = float(m.max()) if m.size else 0.0
    if top <= 0:
        return
    above = m > tol * top
    empty = bool(np.any(box[:, 0] > box[:, 1]))
    for a in range(m.ndim):
        coord = np.arange(m.shape[a]).reshape([-1 if j == a else 1 for j in range(m.ndim)])
        outside = np.ones_like(coord, bool) if empty else (coord < box[a, 0]) | \
            (coord > box[a, 1])
        bad = above & outside
        if bad.any():
            others = tuple(j for j in range(m.ndim) if j != a)
            peak = np.where(bad, m, 0).max(axis=others) / top
            for idx in np.flatnonzero(peak):
                key = (unit, a, int(idx))
                worst[key] = max(worst.get(key, 0.0), float(peak[idx]))
    if not empty:
        inside = above[tuple(slice(int(u), int(v) + 1) for u, v in box)]
        for a in range(m.ndim):
            edges[unit, a, 0] |= bool(inside.take(0, axis=a).any())
            edges[unit, a, 1] |= bool(inside.take(-1, axis=a).any())


def _region(box: np.ndarray, axis: int) -> tuple[int, int] | None:
    if np.any(box[:, 0] > box[:, 1]):
        return None
    return int(box[axis, 0]), int(box[axis, 1])


def violations_by_unit(result: CheckResult) -> dict[tuple[int, ...], list[Violation]]:
    """Violations grouped by unit (for messages)."""
    out: dict[tuple[int, ...], list[Violation]] = {}
    for v in result.violations:
        out.setdefault(v.unit, []).append(v)
    return out
