"""Build benchmarks/REPORT.md (tables) and results/graph_scaling.png from results/*.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS  # noqa: E402


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def graph_scaling(lines: list[str]) -> None:
    d = load("graph_scaling")
    if not d:
        return
    lines += ["## Analysis time vs graph size (spec graphs)", "",
              "| nodes | graph | build (s) | r/S/P (s) | exact regions (s) |",
              "|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['nodes']} | {'branched' if r['branched'] else 'chain'} | "
                     f"{r['build_s']:.4f} | {r['rsp_s']:.4f} | {r['regions_s']:.4f} |")
    lines += ["", "Fitted exponents of time ~ nodes^k (>= 1000 nodes; 1.0 = linear): "
              + ", ".join(f"{k} {v}" for k, v in d["exponents"].items()), ""]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for branched in (False, True):
        rows = [r for r in d["rows"] if r["branched"] == branched]
        for phase in ("build_s", "rsp_s", "regions_s"):
            ax.loglog([r["nodes"] for r in rows], [r[phase] for r in rows], "o-",
                      label=f"{'branched' if branched else 'chain'} {phase[:-2]}")
    ax.set_xlabel("nodes")
    ax.set_ylabel("seconds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.savefig(RESULTS / "graph_scaling.png", dpi=110, bbox_inches="tight")
    lines += ["![graph scaling](results/graph_scaling.png)", ""]


def capture(lines: list[str]) -> None:
    d = load("capture")
    if not d:
        return
    lines += ["## PyTorch capture + analysis (warm, median)", "",
              "| model | fast capture + r/S/P (s) | + exact regions (s) | torch.export path (s) | "
              "speed-up |", "|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['model']} | {r['fast_analyze_s']:.3f} | "
                     f"{r['fast_analyze_regions_s']:.3f} | {r['export_analyze_s']:.3f} | "
                     f"{r['speedup']:.1f}x |")
    lines += ["", f"Target: <= {d['target_s']} s. Load average during the run: "
              f"{d.get('load_average_1min', '?'):.1f}.", ""]


def erf_speed(lines: list[str]) -> None:
    rows, checks = [], []
    for path in sorted(RESULTS.glob("erf_speed_*.json")):
        d = json.loads(path.read_text())
        for method, ups in d["units_per_second_median"].items():
            rows.append(f"| {path.stem} | {d['output']} | {d['k']} | {d['threads']} | "
                        f"{d['chunk']} | {method} | {ups:.2f} |")
        m = d["units_per_second_median"]
        ours = next(v for k, v in m.items() if k.startswith("erf.measure"))
        loop = next(v for k, v in m.items() if k.startswith("one autograd"))
        floor = max(v for k, v in m.items() if k.startswith("bare"))
        checks.append(f"| {path.stem} | {d.get('device', 'cpu')} | {floor / ours:.2f}× | "
                      f"{verdict(floor / ours, 1.3, True)} | {ours / loop:.2f}× | "
                      f"{verdict(ours / loop, 10, False)} |")
    if rows:
        lines += ["## ERF throughput, ResNet-50 layout at 224 (`bench_erf_speed.py`, units/s, "
                  "median)", "",
                  "| run | end-point | units | threads | chunk | method | units/s |",
                  "|---|---|---|---|---|---|---|", *rows, "",
                  "Targets per run: ours / floor time ≤ 1.3× (floor = the faster bare batched "
                  "path), ours ≥ 10× the per-unit loop.", "",
                  "| run | device | ours / floor | ≤ 1.3× | ours vs loop | ≥ 10× |",
                  "|---|---|---|---|---|---|", *checks, ""]


def crop(lines: list[str]) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("crop*.json"))]
    if not runs:
        return
    lines += ["## Crop measurement (theory pays for the measurement)", "",
              "`erf.measure(crop=True)` vs `erf.measure` on the full input vs one forward + "
              "backward per unit on the full image (target: ≥ 10× the last, on CPU). The "
              "crop time includes both analyses (full size and each crop size) and the "
              "dependency-cone check. On CUDA, PyTorch runs float32 convolutions in TF32 "
              "by default (cudnn.allow_tf32), so crop and full-image maps differ there at "
              "the 1e-2 level; exactness is tested in float64 (tests/test_erf_crop.py). On "
              "a GPU the full image is cheap and the per-call setup weighs more; the crop "
              "pays once regions are small against the image and units many (ResNet-50 at "
              "1024 px); RepLKNet's regions are half the image and it does not.", "",
              "| model | input | device | end-point | units | crops (per pass) | crop units/s | "
              "full-input erf.measure units/s | per-unit loop units/s | crop vs loop | "
              "max rel. diff |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in runs:
        for r in d["rows"]:
            if "loop_units_per_s" not in r:  # an older format
                continue
            crops = "; ".join("x".join(map(str, s)) for s in r["crop_shapes"])
            lines.append(
                f"| {r['model']} | {max(r['input'])} | {r['device']} | {r['end_point']} | "
                f"{r['units']} | {crops} ({r['crop_chunk']}) | {r['crop_units_per_s']:.2f} | "
                f"{_num(r['measure_full_units_per_s'], 2)} | {r['loop_units_per_s']:.2f} | "
                f"{r['speedup']:.1f}x, {verdict(r['speedup'], 10, False)} | "
                f"{r['max_rel_diff']:.1e} |")
    lines.append("")


def verdict(value: float, target: float, at_most: bool) -> str:
    """'met' or 'missed by X×' for a ratio and its target (<= target or >= target)."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else f"missed by {value / target if at_most else target / value:.2f}×"


def frontends(lines: list[str]) -> None:
    d = load("frontends")
    if not d:
        return
    lines += ["## Capture vs analysis per frontend (warm, median, CPU)", "",
              f"Median of {d['repeats']} repeats (torch.export: {d['export_repeats']}), "
              f"{d['threads']} thread(s). capture = trace/make_jaxpr + IR build; r/S/P = every "
              "node; regions = exact regions of the end-point. U-Net: r/S/P are undefined at "
              "its output (transposed convs), regions are exact.", "",
              "| model | input | frontend | nodes | capture (s) | r/S/P (s) | regions (s) | "
              "end-point r, S, P | frontends agree |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        rsp = "undefined" if r["rsp"][0] is None or None in r["rsp"][0] else \
            ", ".join(str(v[0]) for v in r["rsp"])
        lines.append(f"| {r['model']} | {r['input_shape']} | {r['frontend']} | {r['nodes']} | "
                     f"{r['capture_s']:.3f} | {r['rsp_s']:.4f} | {r['regions_s']:.3f} | "
                     f"{rsp} | {'yes' if r['frontends_agree'] else 'NO'} |")
    lines.append("")


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def erf_frameworks(lines: list[str]) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("erf_frameworks_*.json"))]
    if not runs:
        return
    lines += ["## ERF throughput, PyTorch vs JAX (units/s, median; float32)", "",
              "Same geometry, end-point and units per framework (`bench_erf_frameworks.py`). "
              "loop = one vjp per unit on a retained forward; floor = the faster bare batched "
              "backward of all units at once. groups = backward passes' cotangents after "
              "packing (= units when nothing packs). setup = one erf.measure call of 1 unit (model "
              "copy to the device, first forward); marginal = (k - 1) / (t_k - t_1), the rate "
              "once the per-call setup is paid (results without these columns predate them). "
              "On GPU both frameworks run float32 with their default TF32 use for "
              "convolutions.", "",
              "| model | framework | device | units | chunk | groups (pack) | measure | "
              "measure pack | setup (s) | marginal | loop | floor |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    checks = []
    for d in sorted(runs, key=lambda d: (d["model_key"], d["device"] != "cpu",
                                         d["framework"])):
        m = d["units_per_second_median"]
        where = d["device"] if d["device"] != "cpu" else f"cpu {d['threads']}t"
        st = d["measure_settings"]
        lines.append(f"| {d['model']} | {d['framework']} | {where} | {d['k']} | "
                     f"{st['plain']['chunk']} | {st['pack']['groups']} | "
                     f"{m['erf.measure']:.1f} | {m['erf.measure pack=True']:.1f} | "
                     f"{_num(d.get('measure_setup_seconds'), 3)} | "
                     f"{_num(d.get('measure_marginal_units_per_second'), 1)} | "
                     f"{m['loop: one vjp per unit']:.1f} | {d['floor_units_per_second']:.1f} |")
        for path, r in d["ratios"].items():
            checks.append(f"| {d['model']} | {d['framework']} | {where} | {path} | "
                          f"{r['floor_over_ours']:.2f}× | "
                          f"{verdict(r['floor_over_ours'], 1.3, True)} | "
                          f"{r['ours_over_loop']:.2f}× | "
                          f"{verdict(r['ours_over_loop'], 10, False)} |")
    lines += ["", "Targets: floor time / our time ≤ 1.3× (ours = floor rate / our rate), and "
              "ours ≥ 10× the per-unit loop (≥ 64 units).", "",
              "| model | framework | device | path | ours / floor | ≤ 1.3× | ours vs loop | "
              "≥ 10× |", "|---|---|---|---|---|---|---|---|", *checks, ""]


def memory(lines: list[str]) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("memory_*.json"))]
    if not runs:
        return
    lines += ["## Peak memory of erf.measure vs units per chunk (fresh process per point)", "",
              "Per run: peak / increase in MiB. CPU: peak RSS (ru_maxrss) after the run, "
              "increase over the RSS after model build + forward. GPU (cuda): peak allocated "
              "on the device (torch `max_memory_allocated`, JAX `peak_bytes_in_use`) and its "
              "increase over the same baseline. Last row: seconds of the chunk-64 run.", ""]
    for model in sorted({d["model_key"] for d in runs}):
        cols = sorted((d for d in runs if d["model_key"] == model),
                      key=lambda d: (d["device"] != "cpu", d["framework"]))
        lines += [f"### {model}, {cols[0]['units']}", "",
                  "| chunk | " + " | ".join(f"{d['framework']} {d['device']}" for d in cols)
                  + " |", "|---|" + "---|" * len(cols)]
        chunks = sorted({r["chunk"] for d in cols for r in d["rows"]})
        for c in chunks:
            cells = []
            for d in cols:
                r = next((r for r in d["rows"] if r["chunk"] == c), None)
                if r is None:
                    cells.append("")
                elif "error" in r:
                    cells.append("failed")
                elif d["device"] != "cpu":
                    cells.append(f"{r['device_peak_mib']:.0f} / +{r['device_increase_mib']:.0f}")
                else:
                    cells.append(f"{r['peak_rss_mib']:.0f} / +{r['rss_increase_mib']:.0f}")
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        last = [next((f"{r['seconds']:.2f} s" for r in d["rows"]
                      if r["chunk"] == max(chunks) and "seconds" in r), "") for d in cols]
        lines += [f"| time at {max(chunks)} | " + " | ".join(last) + " |", ""]


def machines(lines: list[str]) -> None:
    lines += ["## Where each result ran", "",
              "| result | CPUs | GPU | torch | jax | python |", "|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*.json")):
        m = json.loads(path.read_text()).get("machine", {})
        lines.append(f"| {path.stem} | {m.get('cpus', '?')} | {m.get('cuda') or '-'} | "
                     f"{m.get('torch', '-')} | {m.get('jax', '-')} | {m.get('python', '?')} |")
    lines.append("")


def main() -> None:
    lines = ["# Benchmark report", "",
             "Generated by `benchmarks/report.py` from `benchmarks/results/*.json` "
             "(`bash benchmarks/run_all.sh` reruns everything on this machine, "
             "`bash benchmarks/run_device.sh DIR` on a GPU machine). Each result names the "
             "machine it ran on (table at the end): the development machine has 2 CPU cores "
             "shared with other work, so treat ratios, not absolute times, as the result.", ""]
    for section in (graph_scaling, capture, frontends, erf_speed, erf_frameworks, memory,
                    crop, machines):
        section(lines)
    (Path(__file__).parent / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
