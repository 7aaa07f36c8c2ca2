#!/usr/bin/env bash
# Run every benchmark (by hand, on an otherwise idle machine), then rebuild the report.
# Results: benchmarks/results/*.json; report: benchmarks/REPORT.md and benchmarks/results/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/bench_graph_scaling.py
$PY benchmarks/bench_capture.py --threads 1
$PY benchmarks/bench_erf_speed.py --output layer3 --units grid:8 --threads 1
$PY benchmarks/bench_crop.py --threads 1
$PY benchmarks/report.py
