#!/usr/bin/env bash
# Every benchmark on a GPU machine (16 CPU cores, one CUDA GPU), in about 8 minutes.
#   bash benchmarks/run_device.sh [RESULTS_DIR]      (default: benchmarks/results)
# Run from anywhere with python3 (torch + CUDA, jax + CUDA plugin, numpy, scipy, matplotlib);
# nothing is installed: the scripts put the repository root on sys.path.
# CPU benchmarks run single-threaded (--threads 1), several at a time on separate cores
# (JAX_PLATFORMS=cpu so they leave the GPU alone); the GPU ones (--device cuda: *_cuda.json)
# run one after another. Results (JSON) go to RESULTS_DIR; logs to RESULTS_DIR/logs/.
# Rebuild the report afterwards with BENCH_RESULTS=RESULTS_DIR python3 benchmarks/report.py.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=$(mkdir -p "${1:-benchmarks/results}" && cd "${1:-benchmarks/results}" && pwd)
export BENCH_RESULTS=$OUTDIR XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
B=benchmarks
mkdir -p "$OUTDIR/logs"
status=0
start=$(date +%s)

run() {  # run LOGNAME CMD...: one benchmark, its output in logs/LOGNAME.log, a line per end
    local name=$1; shift
    local t0=$(date +%s)
    if "$@" >"$OUTDIR/logs/$name.log" 2>&1; then
        echo "ok     $name ($(( $(date +%s) - t0 )) s)"
    else
        echo "FAILED $name ($(( $(date +%s) - t0 )) s): see logs/$name.log"; tail -5 "$OUTDIR/logs/$name.log"
        return 1
    fi
}

# CPU, one thread each, in parallel (each process pinned to its own thread count)
cpu() { JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 run "$@"; }
pids=()
cpu graph_scaling $PY $B/bench_graph_scaling.py & pids+=($!)
cpu capture $PY $B/bench_capture.py --threads 1 & pids+=($!)
cpu frontends $PY $B/bench_frontends.py --threads 1 & pids+=($!)
cpu erf_speed_cpu $PY $B/bench_erf_speed.py --output layer3 --units grid:8 --threads 1 --repeat 2 & pids+=($!)
cpu crop $PY $B/bench_crop.py --threads 1 & pids+=($!)
cpu crop_jax $PY $B/bench_crop_jax.py --threads 1 --size 1024 & pids+=($!)
for fw in torch jax; do
    cpu erf_fw_small_${fw}_cpu $PY $B/bench_erf_frameworks.py --framework $fw --model small --threads 1 --repeat 3 & pids+=($!)
    cpu erf_fw_r50_${fw}_cpu $PY $B/bench_erf_frameworks.py --framework $fw --model resnet50 --threads 1 --repeat 1 & pids+=($!)
    cpu memory_${fw}_cpu $PY $B/bench_memory.py --framework $fw --model resnet50 --threads 1 & pids+=($!)
done

# GPU, one at a time (the CPU jobs above share the host meanwhile: GPU timings are synchronised
# wall times, the host side of small kernels may be a little slower than on an idle machine)
(
    st=0
    run crop_cuda $PY $B/bench_crop.py --device cuda --units-full 16 || st=1
    run erf_speed_cuda $PY $B/bench_erf_speed.py --output layer3 --units grid:8 --device cuda --repeat 5 --loop-units 64 || st=1
    for fw in torch jax; do
        run erf_fw_small_${fw}_cuda $PY $B/bench_erf_frameworks.py --framework $fw --model small --device cuda --repeat 5 --loop-units 64 || st=1
        run erf_fw_r50_${fw}_cuda $PY $B/bench_erf_frameworks.py --framework $fw --model resnet50 --device cuda --repeat 5 --loop-units 64 || st=1
        run memory_${fw}_cuda $PY $B/bench_memory.py --framework $fw --model resnet50 --device cuda || st=1
    done
    exit $st
) & pids+=($!)

for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "all done in $(( $(date +%s) - start )) s; results in $OUTDIR"
exit $status
