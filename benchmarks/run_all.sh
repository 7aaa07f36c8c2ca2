#!/usr/bin/env bash
# Run every benchmark on CPU (by hand, on an otherwise idle machine), then rebuild the report.
# On a GPU machine use run_device.sh (adds the --device cuda runs).
# Results: benchmarks/results/*.json; report: benchmarks/REPORT.md and benchmarks/results/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/bench_graph_scaling.py
$PY benchmarks/bench_capture.py --threads 1
$PY benchmarks/bench_erf_speed.py --output layer3 --units grid:8 --threads 1
$PY benchmarks/bench_crop.py --threads 1
$PY benchmarks/bench_crop_jax.py --threads 1 --size 1024
$PY benchmarks/bench_frontends.py --threads 1
for fw in torch jax; do
    for model in small resnet50; do
        $PY benchmarks/bench_erf_frameworks.py --framework $fw --model $model --threads 1
    done
    $PY benchmarks/bench_memory.py --framework $fw --model resnet50 --threads 1
done
$PY benchmarks/report.py
