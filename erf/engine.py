"""Set up a measurement (framework, analysis, end-point, units, backend) and run the impulses.

Shared by :func:`erf.measure` and :func:`erf.check`. One forward pass per sample; the impulse
groups (one unit each, or several disjoint units when packed) go through the backward pass in
chunks sized to a memory budget; every chunk yields per-unit maps and a finiteness flag.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytic.analysis import Analysis, analyze_graph
from analytic.api import detect_framework
from analytic.graph import Graph

from . import crop as crops
from . import init as inits
from .impulses import (
    Layout,
    MeasureError,
    infer_layout,
    pack_units,
    parse_layout,
    select_units,
    unit_boxes,
    unpack,
)
from .progress import Progress

INPUT_DISTS = ("normal", "uniform", "ones")
VARIANTS = ("abs", "signed", "squared")
# Impulses per backward pass, at most. On CPU a batched backward does the same arithmetic per
# impulse as one backward each, and big batches fall out of cache: ResNet-50 to layer3 at
# 224 px, one thread, CPU seconds per impulse with chunk 1 / 8 / 32 / 64: 0.123 / 0.132 /
# 0.233 / 0.273 (benchmarks/bench_erf_speed.py). Accelerators want wide batches.
MAX_CHUNK = {"cpu": 8, "accelerator": 256}


@dataclass
class Setup:
    """Everything a measurement needs before its first forward pass."""

    framework: str
    analysis: Analysis
    node: str
    units: np.ndarray  # (k, node_ndim)
    boxes: np.ndarray  # (k, D, 2) inclusive, lo > hi for a unit that reads no input
    input_shape: tuple[int, ...]
    layout: Layout
    backend: Any
    inputs: list[np.ndarray] | None = None
    settings: dict = field(default_factory=dict)
    crop: crops.CropPlan | None = None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.analysis.input_shape


@dataclass
class Block:
    """Per-unit maps of one chunk of one sample."""

    sample: int
    units: np.ndarray  # indices into Setup.units, (m,)
    maps: dict[str, np.ndarray]  # variant -> (m, *input_spatial) float64, or windows
    finite: np.ndarray  # (m,) bool: False = some gradient entry was NaN/inf
    starts: np.ndarray | None = None  # (m, D): maps are (m, *window) windows starting here,
    # zero outside (crops); None: full-size maps

    def full_maps(self, variant: str, shape: Sequence[int]) -> np.ndarray:
        """(m, *shape) full-size maps of one variant."""
        if self.starts is None:
            return self.maps[variant]
        out = np.zeros((len(self.units), *shape))
        for j, sl in enumerate(self.windows()):
            out[(j, *sl)] = self.maps[variant][j]
        return out

    def windows(self) -> list[tuple[slice, ...]]:
        """Per unit, the slices of the input its window covers (crop blocks only)."""
        assert self.starts is not None
        size = next(iter(self.maps.values())).shape[1:]
        return [tuple(slice(int(a), int(a) + n) for a, n in zip(start, size))
                for start in self.starts]


def setup(model: Any, input_shape: Sequence[int] | None = None, *, inputs: Any = None,
          output: str | None = None, units: Any = "center", framework: str | None = None,
          layout: str | None = None, analysis: Analysis | Graph | None = None,
          device: str = "cpu", dtype: Any = None, init: Any = None,
          allow_train_mode: bool = False, crop: bool = False) -> Setup:
    """Resolve the framework, inputs, analysis, end-point, units and backend; with ``crop``,
    plan and verify crop measurement (:mod:`erf.crop`)."""
    framework = framework or _framework(model)
    if framework not in ("torch", "jax"):
        raise MeasureError(f"framework={framework!r}: measurement runs 'torch' or 'jax' models")
    given = _inputs(inputs, framework)
    if given is not None:
        shape = tuple(given[0].shape)
        if input_shape is not None and tuple(input_shape) != shape:
            raise MeasureError(f"input_shape {list(input_shape)} disagrees with the inputs' "
                               f"shape {list(shape)}")
        input_shape = shape
    if input_shape is None:
        raise MeasureError("give input_shape (e.g. (1, 3, 224, 224)) or inputs=")
    input_shape = tuple(int(n) for n in input_shape)
    analysis = _analysis(model, input_shape, output, framework, layout, analysis)
    node = analysis.output
    spatial = analysis.input_shape
    if layout:
        in_layout = parse_layout(layout, input_shape, spatial)
    else:
        in_layout = infer_layout(input_shape, spatial, framework == "jax",
                                 len(input_shape) >= len(spatial) + 2, what="input")
    node_shape = analysis.graph[node].shape
    chosen = select_units(units, node_shape)
    boxes = analysis.regions(node)
    k_boxes = unit_boxes(boxes.lo, boxes.hi, chosen)
    common = dict(input_shape=input_shape, layout=in_layout, node_shape=node_shape,
                  device=device, dtype=dtype, init=inits.resolve(init),
                  allow_train_mode=allow_train_mode)
    if framework == "torch":
        from . import torch_backend as tb
        backend: Any = tb.TorchBackend(model, endpoint=tb.resolve_endpoint(model, analysis, node,
                                                                            output), **common)
    else:
        from . import jax_backend as jb
        backend = jb.JaxBackend(model, endpoint=jb.resolve_endpoint(model, analysis, node,
                                                                    output, input_shape),
                                **common)
    settings = {"framework": framework, "device": str(device), "dtype": backend.dtype_name,
                "output": output, "endpoint": node, "endpoint_path": analysis.graph[node].path,
                "units": units if isinstance(units, str) else np.asarray(units).tolist(),
                "init": inits.describe(init), "allow_train_mode": allow_train_mode,
                "layout": layout, "input_shape": list(input_shape)}
    plan = None
    if crop:
        plan = _crop_plan(model, analysis, output, framework, layout, input_shape, in_layout,
                          chosen, k_boxes)
        settings["crop"] = plan.describe()
    return Setup(framework, analysis, node, chosen, k_boxes, input_shape, in_layout, backend,
                 given, settings, plan)


def _crop_plan(model: Any, analysis: Analysis, output: str | None, framework: str,
               layout: str | None, input_shape: tuple[int, ...], in_layout: Layout,
               units: np.ndarray, boxes: np.ndarray) -> crops.CropPlan:
    if in_layout.batch is None:
        return crops.uncropped(len(units), len(analysis.input_shape), "crops are stacked along "
                               "the batch axis and this input has none")
    p = crops.plan(analysis, units, boxes)
    if not len(p.units):
        return p
    axes = in_layout.axes

    def analyze_at(shape: tuple[int, ...]) -> Analysis:
        full = list(input_shape)
        for a, n in zip(axes, shape):
            full[a] = n
        return _analysis(model, tuple(full), output, framework, layout, None)
    return crops.verify(p, analysis, analyze_at, boxes)


def _framework(model: Any) -> str:
    if isinstance(model, (Graph, Analysis)):
        raise MeasureError("a Graph or Analysis describes geometry only, there is nothing to "
                           "measure: pass the torch or JAX model (and analysis= the graph)")
    fw = detect_framework(model)
    if fw == "spec":
        raise MeasureError("layer specs describe geometry only, there is nothing to measure: "
                           "pass a torch nn.Module or a JAX function")
    return fw


def _inputs(inputs: Any, framework: str) -> list[np.ndarray] | None:
    if inputs is None:
        return None
    if framework == "torch":
        from .torch_backend import to_numpy_input as convert
    else:
        convert = np.asarray
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not items:
        raise MeasureError("inputs= is empty")
    arrays = [convert(x) for x in items]
    if len({a.shape for a in arrays}) != 1:
        raise MeasureError(f"inputs have different shapes {sorted({a.shape for a in arrays})}")
    return arrays


def _analysis(model: Any, input_shape: tuple[int, ...], output: str | None, framework: str,
              layout: str | None, analysis: Analysis | Graph | None) -> Analysis:
    if isinstance(analysis, Graph):
        return analyze_graph(analysis, output)
    if isinstance(analysis, Analysis):
        node = analysis.output if output is None else analysis.graph.resolve(output)
        return analysis if node == analysis.output else analyze_graph(analysis.graph, node)
    if analysis is not None:
        raise MeasureError(f"analysis= must be an Analysis or a Graph, got "
                           f"{type(analysis).__name__}")
    try:
        importlib.import_module(f"analytic.frontends.{framework}")
    except ImportError as e:
        raise MeasureError(f"the {framework} frontend is not available ({e}); pass analysis= "
                           "an analytic.Analysis or Graph of the model") from None
    from analytic import analyze
    options = {"layout": layout} if layout and framework == "jax" else {}
    return analyze(model, input_shape, output=output, framework=framework, **options)


# ---- running ----------------------------------------------------------------------------------

def make_input(shape: Sequence[int], dist: str, rng: np.random.Generator) -> np.ndarray:
    """A random input: ``normal`` N(0, 1) (normalised images), ``uniform`` U[0, 1) (raw pixel
    intensities) or ``ones`` (every entry 1), i.i.d. per entry."""
    if dist == "normal":
        return rng.standard_normal(tuple(shape))
    if dist == "uniform":
        return rng.random(tuple(shape))
    if dist == "ones":
        return np.ones(tuple(shape))
    raise MeasureError(f"input_dist={dist!r}: use one of {', '.join(INPUT_DISTS)}")


def sample_rng(seed: int, sample: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, sample, stream]))


def init_seed(seed: int, sample: int) -> int:
    return int(np.random.SeedSequence([seed, sample, 1]).generate_state(1)[0])


def run(s: Setup, *, samples: int, seed: int, input_dist: str = "normal",
        variants: Sequence[str] = ("abs",), chunk: int | None = None, pack: bool = False,
        progress: bool = False, memory_budget: int | None = None,
        label: str = "erf") -> Iterator[Block]:
    """Yield a :class:`Block` per chunk per sample; fills ``s.settings`` as it goes."""
    variants = tuple(dict.fromkeys(("abs", *variants)))
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise MeasureError(f"variants {bad}: use {', '.join(VARIANTS)}")
    if input_dist not in INPUT_DISTS:
        raise MeasureError(f"input_dist={input_dist!r}: use one of {', '.join(INPUT_DISTS)}")
    if samples < 1:
        raise MeasureError(f"samples must be >= 1, got {samples}")
    if chunk is not None and chunk < 1:
        raise MeasureError(f"chunk must be >= 1, got {chunk}")
    n_samples = samples if s.inputs is None else max(samples, len(s.inputs))
    todo = np.arange(len(s.units)) if s.crop is None else s.crop.full
    groups = ([[int(todo[j]) for j in g] for g in pack_units(s.boxes[todo], s.spatial_shape)]
              if pack else [[int(i)] for i in todo])
    s.settings.update(samples=n_samples, seed=seed, input_dist=input_dist if s.inputs is None
                      else "given", variants=list(variants), pack=pack, groups=len(groups))
    bar = Progress(n_samples * len(s.units), label, enabled=progress)
    b = s.backend
    with b.context():
        for sample in range(n_samples):
            x = (s.inputs[sample % len(s.inputs)] if s.inputs is not None else
                 make_input(s.input_shape, input_dist, sample_rng(seed, sample, 0)))
            b.begin_sample(init_seed(seed, sample) if b.init is not None else None)
            if s.crop is not None and len(s.crop.units):
                for block in _cropped(s, x, variants, sample, chunk, memory_budget):
                    bar.update(len(block.units))
                    yield block
            if not groups:
                continue
            fwd = b.start(x)
            if chunk is None:
                chunk = _fitting(b, fwd.bytes_per_cotangent, memory_budget, s.settings)
            s.settings["chunk"] = chunk
            start = 0
            while start < len(groups):
                part = groups[start:start + chunk]
                try:
                    block = _chunk(s, fwd, part, variants, sample)
                except Exception as e:  # noqa: BLE001 - out of memory: halve the chunk
                    chunk = _smaller(e, s, len(part), "chunk")
                    continue
                start += len(part)
                bar.update(len(block.units))
                yield block
    bar.close()
    s.settings["backward"] = "batched" if b.batched is True else b.batched


def _cropped(s: Setup, x: np.ndarray, variants: tuple[str, ...], sample: int,
             chunk: int | None, memory_budget: int | None) -> Iterator[Block]:
    """Blocks of the cropped units of one sample: per crop shape, chunks of crops stacked
    along the batch axis (without ``chunk``, the first pass is one crop, which sizes the rest
    to the memory budget)."""
    p, b = s.crop, s.backend
    assert p is not None
    size = chunk or s.settings.get("crop_chunk")
    for i, shape in enumerate(p.shapes):
        mine = np.flatnonzero(p.shape_of == i)
        pos = 0
        while pos < len(mine):
            part = mine[pos:pos + (size or 1)]
            pos += len(part)
            xs = np.stack([crops.cut(x, s.layout.axes, p.starts[j], shape) for j in part])
            try:
                maps, per_crop = b.crop_backward(xs, p.inner[part], p.node_shapes[i], variants)
            except Exception as e:  # noqa: BLE001 - out of memory: halve the crops per pass
                pos -= len(part)
                size = _smaller(e, s, len(part), "crop_chunk")
                continue
            if size is None:
                size = _fitting(b, per_crop, memory_budget, s.settings)
            s.settings["crop_chunk"] = size
            finite = np.isfinite(maps["abs"].reshape(len(part), -1)).all(axis=1)
            yield Block(sample, p.units[part], maps, finite, p.starts[part])


def _fitting(b: Any, bytes_each: int, memory_budget: int | None, settings: dict) -> int:
    """Impulses (or crops) per pass that fit the memory budget, capped per device kind; the
    budget goes into ``settings``."""
    budget = memory_budget or b.memory_budget()
    settings["memory_budget"] = int(budget)
    cap = MAX_CHUNK["cpu" if b.on_cpu else "accelerator"]
    return int(np.clip(budget // max(bytes_each, 1), 1, cap))


def _smaller(error: Exception, s: Setup, tried: int, key: str) -> int:
    """Half of ``tried`` impulses per pass after running out of memory (re-raised if ``error``
    is anything else); a clear error when a single one does not fit."""
    text = f"{type(error).__name__}: {error}"
    if not any(m in text for m in ("out of memory", "OutOfMemory", "RESOURCE_EXHAUSTED")):
        raise error
    free = getattr(s.backend, "free_memory", None)
    if free is not None:
        free()
    if tried <= 1:
        raise MeasureError(
            f"one impulse does not fit in memory on {s.settings['device']} (input "
            f"{list(s.input_shape)}): {text.splitlines()[0][:300]}. Measure at a smaller input "
            "size, with crop=True (memory ~ the region instead of the image), or on a device "
            "with more memory") from error
    s.settings[key] = tried // 2
    return tried // 2


def _chunk(s: Setup, fwd: Any, groups: list[list[int]], variants: tuple[str, ...],
           sample: int) -> Block:
    maps = fwd.backward([s.units[g] for g in groups], variants)
    units, per_unit, finite = [], {v: [] for v in variants}, []
    redo: list[int] = []
    for j, g in enumerate(groups):
        ok = bool(np.isfinite(maps["abs"][j]).all())
        if len(g) > 1 and not ok:  # a NaN/inf may come from any unit of the group: unpack
            redo += g
            continue
        units += g
        finite += [ok] * len(g)
        for v in variants:
            per_unit[v].append(maps[v][j][None] if len(g) == 1 else unpack(maps[v][j],
                                                                           s.boxes[g]))
    if redo:
        again = fwd.backward([s.units[[i]] for i in redo], variants)
        units += redo
        finite += [bool(np.isfinite(m).all()) for m in again["abs"]]
        for v in variants:
            per_unit[v].append(again[v])
    return Block(sample, np.asarray(units, np.int64),
                 {v: np.concatenate(per_unit[v]) for v in variants}, np.asarray(finite))
