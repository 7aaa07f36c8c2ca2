"""``erf.measure``: effective receptive fields by unit impulses through the real model.

For each chosen output unit of the end-point (a spatial position), the cotangent is 1 at that
position for every channel (and batch entry) and 0 elsewhere (see :mod:`erf.impulses`); the
input gradient's magnitude summed over channels is the unit's map for that sample; maps are
averaged over samples (random inputs, and re-initialised weights when ``init`` is given), as
Luo et al. (NeurIPS 2016) did. The analytic regions of the same units come from
``analytic.analyze``; the metrics from :func:`erf.metrics.summarize`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from analytic.analysis import Analysis
from analytic.errors import ErfError

from . import engine
from .impulses import MeasureError, hull
from .metrics import summarize

SCHEMA_VERSION = 1
MAX_MAP_BYTES = 4 * 2**30  # per-unit maps kept in memory; more asks for fewer units


@dataclass(frozen=True, eq=False)
class ERFResult:
    """A measurement: per-unit maps, their mean, the units' analytic regions, metrics.

    ``units`` (k, node_ndim): the end-point positions measured. ``maps`` (k, *input_spatial):
    per unit, the mean over samples of |gradient| summed over channels (NaN for a unit whose
    every sample was non-finite); ``signed`` / ``squared``: the same for g and g^2, when asked
    in ``variants``. ``mean_map``: the mean of ``maps`` over units (for ``units="center"`` the
    centre unit's map). ``regions`` (k, D, 2): each unit's exact inclusive input box, clipped
    (lo > hi: the unit reads no input). ``counts`` (k,): finite samples per unit;
    ``nonfinite``: (unit, sample) gradients dropped for NaN/inf entries, never averaged in.
    ``metrics``: see the property.
    """

    units: np.ndarray
    maps: np.ndarray
    mean_map: np.ndarray
    regions: np.ndarray
    analysis: Analysis
    nonfinite: int
    counts: np.ndarray
    settings: dict
    signed: np.ndarray | None = None
    squared: np.ndarray | None = None
    versions: dict = field(default_factory=dict)
    _metrics: dict | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict:
        """:func:`erf.metrics.summarize` of ``mean_map`` with ``region`` (and the unit's
        analytic centre for one unit); ``{"error": ...}`` when the map cannot be measured.
        Computed on first use (the Gaussian fit of a 224x224 map takes seconds)."""
        if self._metrics is None:
            object.__setattr__(self, "_metrics", _metrics(self))
        assert self._metrics is not None
        return self._metrics

    @property
    def endpoint(self) -> str:
        """The end-point as asked (``output``), with the node path it resolved to."""
        node = self.analysis.node()
        path, asked = node.path or node.name, self.settings.get("output")
        return path if not asked or asked == path else f"{asked} ({path})"

    @property
    def region(self) -> np.ndarray | None:
        """The box the metrics use: the unit's for one unit, else the hull of all of them."""
        return hull(self.regions)

    @property
    def center(self) -> list[float | None] | None:
        """The analytic centre (paper eq. 11) of a single unit, per input axis; else None."""
        if len(self.units) != 1:
            return None
        return self.analysis.region_of(tuple(self.units[0]))["center"]

    def summary(self) -> str:
        a, s, m = self.analysis, self.settings, self.metrics
        node = a.node()
        k = len(self.units)
        what = (f"unit {self.units[0].tolist()}" if k == 1 else f"{k} units ({s['units']})")
        lines = [
            f"ERF at {self.endpoint} (node {node.name}, shape "
            f"{'x'.join(map(str, node.shape)) or 'global'}) of a {s['framework']} model, input "
            f"{'x'.join(map(str, s['input_shape']))}, {s['dtype']} on {s['device']}",
            f"  {what}; {s['samples']} samples ({s['input_dist']} inputs"
            + (f", init {s['init']}" if s.get("init") else "") + ")"
            + (f"; backward {s.get('backward', '?')}, {s['chunk']} impulses per pass"
               if "chunk" in s else "")
            + (f", {s['groups']} packed groups" if s.get("pack") and s.get("groups") else "")
            + _crop_note(s),
            f"  analytic: r={_fmt(node.size)} S={_fmt(node.stride)} P={_fmt(node.padding)}; "
            f"region {_box(self.region)}",
        ]
        if "error" in m:
            lines.append(f"  metrics: {m['error']}")
        else:
            g = m["gaussian"]
            sigma = ("fit failed" if "error" in g else
                     f"sigma {_fmt(tuple(round(x, 2) for x in g['sigma']))} R2 {g['r2']:.3f}")
            ratio = m.get("rf_ratio", {}).get("size_ratio")
            lines.append(f"  ERF: Luo size {m['luo']['size']:.2f} ({m['luo']['count']} "
                         f"positions), Gaussian {sigma}, moment sigma "
                         f"{_fmt(tuple(round(x, 2) for x in m['moments']['sigma']))}"
                         + (f", ERF/RF size {ratio:.3f}" if ratio is not None else ""))
        if self.nonfinite:
            lines.append(f"  WARNING: {self.nonfinite} (unit, sample) gradients had NaN/inf "
                         "entries and were left out")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """JSON-ready: settings, units, analytic r/S/P and regions, metrics, versions."""
        a = self.analysis
        node = a.node()
        return {
            "schema_version": SCHEMA_VERSION,
            "endpoint": {"node": node.name, "path": node.path, "shape": list(node.shape)},
            "input_shape": list(self.settings["input_shape"]),
            "units": self.units.tolist(),
            "counts": self.counts.tolist(),
            "nonfinite": self.nonfinite,
            "analytic": {"size": list(node.size), "stride": list(node.stride),
                         "padding": list(node.padding), "aligned": a.aligned,
                         "regions": [_box_list(b) for b in self.regions],
                         "region": _box_list(self.region), "center": self.center},
            "metrics": self.metrics,
            "settings": self.settings,
            "versions": self.versions,
        }

    def plot(self):
        """The heatmap ``Figure`` of the mean map with the analytic box and centre."""
        from .plot import heatmap
        node = self.analysis.node()
        title = (f"{self.settings.get('model') or self.settings['framework'] + ' model'} @ "
                 f"{self.endpoint}: r={_fmt(node.size)}, {len(self.units)} unit(s), "
                 f"{self.settings['samples']} sample(s)")
        centres = None
        if len(self.units) > 1:
            full = self.regions[np.all(self.regions[:, :, 0] <= self.regions[:, :, 1], axis=1)]
            centres = full.mean(axis=2) if len(full) else None
        return heatmap(np.nan_to_num(self.mean_map), self.region, self.center, title,
                       unit_centers=centres)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``results.json``, ``erf.npy`` (the mean map) and ``erf.png``, each atomically
        (a temporary file in the same directory, then ``os.replace``)."""
        from .plot import save_figure
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), allow_nan=False)
        _atomic(out / "results.json", lambda f: f.write(text.encode()))
        _atomic(out / "erf.npy", lambda f: np.save(f, self.mean_map))
        fig = self.plot()
        _atomic(out / "erf.png", lambda f: save_figure(fig, f))
        return out


def measure(model: Any, input_shape=None, *, inputs: Any = None, output: str | None = None,
            units: Any = "center", samples: int = 1, seed: int = 0, device: str = "cpu",
            framework: str | None = None, init: Any = None, input_dist: str = "normal",
            variants=("abs",), chunk: int | None = None, pack: bool = False,
            progress: bool = False, layout: str | None = None,
            analysis: Analysis | Any = None, dtype: Any = None,
            allow_train_mode: bool = False, memory_budget: int | None = None,
            crop: bool = False) -> ERFResult:
    """Measure the effective receptive field of ``model`` at an end-point.

    ``model``: a ``torch.nn.Module``, a JAX function ``fn(x)`` or pair ``(fn, params)``
    (``framework`` overrides the detection). ``input_shape``: the full input shape, e.g.
    ``(1, 3, 224, 224)``; or ``inputs``: one array/tensor, or a list (one per sample; sample s
    uses ``inputs[s % len]``, and ``samples`` grows to ``len(inputs)``). Batch entries are
    independent samples too (eval mode: nothing mixes the batch). ``output``: the end-point, a
    node name or module path of the analysis (default: the model's output); torch captures it
    with a forward hook on that module, on a private copy of the model. ``units``: "center",
    "grid:N", "all" or explicit positions (:func:`erf.impulses.select_units`).
    ``samples``/``seed``: random inputs drawn from ``input_dist`` ("normal" N(0,1), "uniform"
    U[0,1), "ones"), and weights re-drawn per sample by ``init`` (a name in
    :data:`erf.init.NAMED` or ``init(model_copy_or_params, seed)``). ``variants``: "abs"
    (always), "signed", "squared". ``chunk``: impulses per backward pass (default: sized to
    ``memory_budget`` bytes, at most 8 on CPU where wider batches only cost cache, 256 on
    accelerators); ``pack``: share one cotangent between units with disjoint exact
    regions (relies on the regions being right: :func:`erf.check` verifies them).
    ``crop``: measure each unit on a crop of the input that holds its exact region (cost
    ~ region area instead of image area; exact, :mod:`erf.crop`), after checking at each crop
    size that nothing depends on the input size; where that check fails, every unit is
    measured on the full input and ``settings["crop"]["refused"]`` says why (also warned).
    ``analysis``: an ``Analysis`` or ``Graph`` to use instead of analysing ``model``.
    ``dtype``: compute dtype (default: the model's). ``layout``: the input layout (e.g.
    "NHWC") when it cannot be inferred. The torch copy is put in ``eval()`` mode; batch norm
    still using batch statistics is refused unless ``allow_train_mode``.
    """
    s = engine.setup(model, input_shape, inputs=inputs, output=output, units=units,
                     framework=framework, layout=layout, analysis=analysis, device=device,
                     dtype=dtype, init=init, allow_train_mode=allow_train_mode, crop=crop)
    if s.crop is not None and s.crop.refused:
        warnings.warn(f"erf.measure: not cropping, measuring on the full input: "
                      f"{s.crop.refused}", stacklevel=2)
    spatial = s.spatial_shape
    wanted = tuple(dict.fromkeys(("abs", *variants)))
    need = len(s.units) * math.prod(spatial) * 8 * len(wanted)
    if need > MAX_MAP_BYTES:
        raise MeasureError(f"{len(s.units)} units x {list(spatial)} maps need "
                           f"{need / 2**30:.1f} GiB; measure fewer units (units='grid:N')")
    sums = {v: np.zeros((len(s.units), *spatial)) for v in wanted}
    counts = np.zeros(len(s.units), np.int64)
    nonfinite = 0
    for block in engine.run(s, samples=samples, seed=seed, input_dist=input_dist,
                            variants=wanted, chunk=chunk, pack=pack, progress=progress,
                            memory_budget=memory_budget, label="erf measure"):
        ok = block.finite
        nonfinite += int((~ok).sum())
        done = block.units[ok]  # distinct within a block
        for v in wanted:
            if block.starts is None:
                sums[v][done] += block.maps[v][ok]
                continue
            for j, window in enumerate(block.windows()):  # crops: add the window only
                if ok[j]:
                    sums[v][(block.units[j], *window)] += block.maps[v][j]
        counts[done] += 1
    measured = counts > 0
    n = np.maximum(counts, 1).reshape(-1, *[1] * len(spatial))
    maps = {}
    for v in wanted:  # in place: per-unit maps can be gigabytes
        maps[v] = sums[v]
        maps[v] /= n
        maps[v][~measured] = np.nan
    if measured.all():
        mean_map = maps["abs"].mean(axis=0)
    else:
        mean_map = maps["abs"][measured].mean(axis=0) if measured.any() else \
            np.full(spatial, np.nan)
    return ERFResult(units=s.units, maps=maps["abs"], mean_map=mean_map, regions=s.boxes,
                     analysis=s.analysis, nonfinite=nonfinite, counts=counts,
                     settings=s.settings, signed=maps.get("signed"),
                     squared=maps.get("squared"), versions=versions())


def _metrics(r: ERFResult) -> dict:
    if not np.all(np.isfinite(r.mean_map)):
        return {"error": "no unit has a finite measurement (every sample had NaN/inf)"}
    box = r.region
    region = None if box is None else [(int(u), int(v)) for u, v in box]
    center = None
    c = r.center
    if c is not None and None not in c:  # the unit's analytic centre, inside the map
        center = tuple(int(np.clip(math.floor(x + 0.5), 0, n - 1))
                       for x, n in zip(c, r.mean_map.shape))
        if r.mean_map[center] <= 0:
            center = None
    try:
        return summarize(r.mean_map, center=center, region=region)
    except ErfError as e:
        return {"error": str(e)}


def versions() -> dict:
    """Installed versions of erfsuite, numpy, torch and jax (None where not installed)."""
    out = {}
    for name in ("erfsuite", "numpy", "torch", "jax"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _crop_note(settings: dict) -> str:
    c = settings.get("crop")
    if not c:
        return ""
    if c["refused"]:
        return f"; not cropped: {c['refused']}"
    return (f"; {c['cropped_units']} units on crops "
            f"{', '.join('x'.join(map(str, s)) for s in c['crop_shapes'])} "
            f"({settings.get('crop_chunk', '?')} per pass)")


def _fmt(values) -> str:
    parts = ["-" if v is None else str(v) for v in values]
    return "(" + ", ".join(parts) + ")" if len(set(parts)) > 1 else (parts[0] if parts else "-")


def _box(box: np.ndarray | None) -> str:
    if box is None:
        return "empty (reads no input)"
    return " x ".join(f"[{u},{v}]" for u, v in box)


def _box_list(box: np.ndarray | None) -> list | None:
    if box is None or np.any(box[:, 0] > box[:, 1]):
        return None
    return [[int(u), int(v)] for u, v in box]
