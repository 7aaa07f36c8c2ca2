"""kind = "erf": measured ERF against theory for models at chosen end-points.

Per item (a model, a framework, an input size) and end-point: the analytic r, S, P and exact
region of the measured unit, the ERF map (``erf.measure``), its metrics, and optionally the
containment check (``erf.check``). Maps are saved as ``items/<id>/<end-point>.npy``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import figures
from ..config import Config, Key
from ..io import write_npy
from ..runner import RunContext
from .common import table_csv

ITEM_SCHEMA = {
    "model": Key((str,), None, "zoo name or package.module:attr", True),
    "framework": Key((str,), "", "torch | jax (default: the model's first)",
                     choices=("", "torch", "jax")),
    "input_size": Key((int,), 96, "spatial input size (square)", low=1, high=100_000),
    "input_shape": Key((list,), [], "full input shape (overrides input_size), e.g. [1, 3, 96, 96]"),
    "layout": Key((str,), "", "JAX input layout, e.g. NCHW (default: the zoo's, else NHWC)"),
    "endpoints": Key((list,), [], "end-points (module paths); empty: the model's output"),
    "units": Key((str,), "center", "center | grid:N | all"),
    "samples": Key((int,), 4, "random inputs (and inits) averaged", low=1, high=100_000),
    "init": Key((str,), "", "re-initialise weights per sample: '' (keep), normal, uniform, ones"),
    "input_dist": Key((str,), "normal", "normal | uniform | ones",
                      choices=("normal", "uniform", "ones")),
    "crop": Key((bool,), False, "measure each unit on a crop holding its exact region "
                "(exact; falls back to the full input where padding depends on the size)"),
    "check": Key((bool,), True, "run the containment check (erf.check) too"),
    "check_units": Key((str,), "grid:3", "units of the containment check"),
    "label": Key((str,), "", "short name in tables and figures (default: the model)"),
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "output"


def run_item(item: dict, ctx: RunContext, item_id: str) -> dict:
    import erf
    from erf.targets import load_target
    target = load_target(item["model"], item["framework"] or None)
    shape = (tuple(item["input_shape"]) if item["input_shape"] else
             target.input_shape((item["input_size"],)))
    layout = (item["layout"] or target.layout) if target.framework == "jax" else None
    rows = []
    for endpoint in item["endpoints"] or [None]:
        result = erf.measure(target.obj, shape, output=endpoint, units=item["units"],
                             samples=item["samples"], seed=ctx.seed, device=ctx.device,
                             framework=target.framework, init=item["init"] or None,
                             input_dist=item["input_dist"], layout=layout, crop=item["crop"])
        node = result.analysis.node()
        name = endpoint or "output"
        npy = write_npy(ctx.item_dir(item_id) / f"{_slug(name)}.npy", result.mean_map)
        row = {"endpoint": name, "shape": list(node.shape), "size": list(node.size),
               "stride": list(node.stride), "padding": list(node.padding),
               "aligned": result.analysis.aligned, "units": result.units.tolist(),
               "region": result.regions[0].tolist(), "center": result.center,
               "metrics": result.metrics, "nonfinite": int(result.nonfinite),
               "map": str(npy.relative_to(ctx.out)), "crop": result.settings.get("crop")}
        if item["check"]:
            chk = erf.check(target.obj, shape, output=endpoint, units=item["check_units"],
                            samples=2, seed=ctx.seed, device=ctx.device,
                            framework=target.framework, layout=layout)
            row["contained"] = bool(chk.ok)
            row["violations"] = len(chk.violations)
        rows.append(row)
    return {"model": item["label"] or item["model"], "framework": target.framework,
            "input_size": item["input_size"], "endpoints": rows}


def _metric(row: dict, *path, default=None):
    value = row.get("metrics", {})
    for p in path:
        if not isinstance(value, dict) or p not in value:
            return default
        value = value[p]
    return value


def finish(config: Config, results: list[dict], ctx: RunContext) -> list[Path]:
    table, files, panels = [], [], []
    pdf = config.figures["pdf"]
    for r in results:
        depth_labels, depth_rf, depth_erf = [], [], []
        for row in r["endpoints"]:
            erf_map = np.load(ctx.out / row["map"])
            luo = _metric(row, "luo", "size")
            sigma = _metric(row, "gaussian", "sigma")
            ratios = _metric(row, "replknet", default=None)
            table.append({
                "model": r["model"], "framework": r["framework"], "input": r["input_size"],
                "endpoint": row["endpoint"], "r": _first(row["size"]),
                "S": _first(row["stride"]), "P": _first(row["padding"]),
                "erf_size_luo": luo, "gauss_sigma": _fmt_list(sigma),
                "replknet_t20_t30_t50_t99": _fmt_list(_ratios(ratios)),
                "contained": row.get("contained", ""), "aligned": row["aligned"]})
            title = f"{r['model']} ({r['framework']}) · {row['endpoint']} · {r['input_size']} px"
            box = np.asarray(row["region"]) if row["region"] is not None else None
            base = ctx.out / "figures" / f"{_slug(r['id'])}_{_slug(row['endpoint'])}"
            if config.figures["heatmap"]:
                files += figures.save(figures.heatmap_figure(erf_map, box, row["center"], title),
                                      base.with_name(base.name + "_heatmap.png"), pdf)
            if config.figures["log_heatmap"]:
                files += figures.save(figures.heatmap_figure(erf_map, box, row["center"], title,
                                                             log=True),
                                      base.with_name(base.name + "_heatmap_log.png"), pdf)
            if config.figures["profile"]:
                files += figures.save(figures.profile_figure(
                    erf_map, sigma, _metric(row, "gaussian", "center"), box, title),
                    base.with_name(base.name + "_profile.png"), pdf)
            panels.append((erf_map, box, row["center"], title))
            depth_labels.append(row["endpoint"])
            depth_rf.append(_first(row["size"]))
            depth_erf.append(luo)
        if config.figures["depth"] and len(depth_labels) > 1:
            files += figures.save(figures.depth_figure(
                depth_labels, depth_rf, depth_erf,
                f"{r['model']} ({r['framework']}) · {r['input_size']} px: r and ERF size"),
                ctx.out / "figures" / f"{_slug(r['id'])}_depth.png", pdf)
    if config.figures["grid"] and len(panels) > 1:
        files += figures.save(figures.grid_figure(panels), ctx.out / "figures" / "grid.png",
                              pdf)
    files.insert(0, table_csv(ctx.out / "erf_table.csv", table))
    ctx.config.extra["_table"] = table
    return files


def _first(values):
    return values[0] if values and len(set(values)) == 1 else \
        ",".join("-" if v is None else str(v) for v in values)


def _fmt_list(values) -> str:
    if values is None:
        return ""
    return ",".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in values)


def _ratios(replknet) -> list | None:
    if not isinstance(replknet, list):
        return None
    return [entry.get("ratio") for entry in replknet if isinstance(entry, dict)]


def summary(config: Config, results: list[dict]) -> list[str]:
    table = config.extra.get("_table", [])
    lines = ["| model | fw | end-point | r | S | P | ERF size | σ | contained |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        size = t["erf_size_luo"]
        lines.append(f"| {t['model']} | {t['framework']} | {t['endpoint']} | {t['r']} | "
                     f"{t['S']} | {t['P']} | {size if size is None else f'{size:.1f}'} | "
                     f"{t['gauss_sigma']} | {t['contained']} |")
    bad = [t for t in table if t["contained"] is False]
    lines += ["", "Containment: " + ("every measured gradient lies inside its exact analytic "
                                     "region." if not bad else
                                     f"{len(bad)} end-points have gradients OUTSIDE their "
                                     "analytic region (a bug: see results.json).")]
    return lines
