"""Units per second of ERF measurement on a ResNet-50-sized torch model (CPU).

The model is torchvision's ResNet-50 layout (bottlenecks 3-4-6-3, widths 64..2048, stride in
the 3x3 conv, one ReLU module shared by the three calls of each block), written here so the
benchmark needs no torchvision; its layer spec is generated beside it, so ``erf.measure`` gets
the exact regions without a frontend. Three ways to get the input gradients of the same units:

- ``erf.measure``: the library path (a copy of the model, forward hook end-point, one
  ``torch.func.vjp`` forward, ``vmap`` over chunks of cotangents (at most 8 on CPU),
  reduction to per-unit maps);
- a loop: one ``torch.autograd.grad`` per unit on a retained graph (no forward timed);
- bare batched autograd: one ``torch.autograd.grad(..., is_grads_batched=True)`` call with all
  the units' cotangents (no forward timed, no chunking, no reduction);
- bare ``torch.func.vjp`` + ``vmap`` over all cotangents at once (forward included).
Each is timed ``--repeat`` times; the median and the best rate are reported, and the median
CPU time per unit (process time over all threads). On a shared, loaded machine prefer
``--threads 1``: with several threads, OpenMP workers spin while waiting for descheduled
peers, which inflates both wall and CPU time of the paths with many small ops.

    python benchmarks/bench_erf_speed.py [--output layer3] [--units grid:8] [--threads 2]
        [--device cuda]

writes ``benchmarks/results/erf_speed_<output>_<threads>t.json`` (median and best of the repeats;
``erf_speed_<output>_cuda.json`` with ``--device cuda``, where every timed call ends with
``torch.cuda.synchronize()`` and the CPU time per unit is only the host's share).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from common import write_result  # noqa: E402

import erf  # noqa: E402
from analytic.spec import load_spec  # noqa: E402
from erf.impulses import select_units  # noqa: E402


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(mid, 4 * mid, 1, bias=False), nn.BatchNorm2d(4 * mid)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != 4 * mid:
            self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * mid, 1, stride, bias=False),
                                            nn.BatchNorm2d(4 * mid))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (mid, blocks, stride) in enumerate(STAGES, 1):
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(cin, mid, stride if b == 0 else 1))
                cin = 4 * mid
            setattr(self, f"layer{i}", nn.Sequential(*layers))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnet50_spec(size: int) -> dict:
    """The layer spec of :class:`ResNet50`, node names = module paths ('@k': k-th call)."""
    nodes = []

    def add(name, op, inputs, **fields):
        nodes.append({"name": name, "op": op, "inputs": inputs, **fields})
        return name

    x = add("conv1", "conv", ["input"], kernel=7, stride=2, pad=3)
    x = add("bn1", "pointwise", [x])
    x = add("relu", "pointwise", [x])
    x = add("maxpool", "pool", [x], kernel=3, stride=2, pad=1)
    cin = 64
    for i, (mid, blocks, stride) in enumerate(STAGES, 1):
        for b in range(blocks):
            p, s = f"layer{i}.{b}", stride if b == 0 else 1
            y = add(f"{p}.conv1", "conv", [x])
            y = add(f"{p}.bn1", "pointwise", [y])
            y = add(f"{p}.relu", "pointwise", [y])
            y = add(f"{p}.conv2", "conv", [y], kernel=3, stride=s, pad=1)
            y = add(f"{p}.bn2", "pointwise", [y])
            y = add(f"{p}.relu@1", "pointwise", [y])
            y = add(f"{p}.conv3", "conv", [y])
            y = add(f"{p}.bn3", "pointwise", [y])
            short = x
            if s != 1 or cin != 4 * mid:
                short = add(f"{p}.downsample.0", "conv", [x], stride=s)
                short = add(f"{p}.downsample.1", "pointwise", [short])
            y = add(f"{p}.add", "add", [y, short])
            x = add(f"{p}.relu@2", "pointwise", [y])
            cin = 4 * mid
    return {"input": [size, size], "nodes": nodes}


def endpoint(model: nn.Module, output: str):
    box = {}
    handle = dict(model.named_modules())[output].register_forward_hook(
        lambda m, a, out: box.setdefault("y", out))
    return box, handle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default="layer3")
    ap.add_argument("--units", default="grid:8")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loop-units", type=int, default=8, help="units timed in the loop")
    ap.add_argument("--repeat", type=int, default=3, help="timings per path")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ResNet50().eval().to(device)
    graph = load_spec(resnet50_spec(args.size))
    shape = (1, 3, args.size, args.size)
    node_shape = graph[graph.resolve(args.output)].shape
    units = select_units(args.units, node_shape)
    k = len(units)
    rows: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def timed(name: str, n: int, fn) -> None:
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            fn()
            sync()
            rows.setdefault(name, []).append(n / (time.perf_counter() - t))
            cpu.setdefault(name, []).append((time.process_time() - c) / n)

    # 1. the library path (includes copying the model, the forward, the regions, reductions)
    erf.measure(model, shape, analysis=graph, output=args.output, units="center",
                device=args.device)  # warm-up
    result = {}
    timed("erf.measure (func.vjp + vmap, chunked)", k, lambda: result.setdefault(
        "r", erf.measure(model, shape, analysis=graph, output=args.output, units=args.units,
                         device=args.device)))
    r = result["r"]
    print(r, file=sys.stderr)

    # shared forward for the bare paths (parameters frozen, as the library does)
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(shape, device=device, requires_grad=True)
    box, handle = endpoint(model, args.output)
    model(x)
    handle.remove()
    y = box["y"]
    cot = torch.zeros((k, *y.shape), device=device)
    for j, u in enumerate(units):
        cot[(j, 0, slice(None), *u)] = 1

    # 2. one backward per unit (on the retained graph; no forward)
    n = min(args.loop_units, k)
    timed("one autograd.grad per unit", n, lambda: [
        torch.autograd.grad(y, x, cot[j], retain_graph=True) for j in range(n)])

    # 3. one bare batched autograd call with every cotangent (no forward)
    timed("bare autograd.grad(is_grads_batched=True)", k, lambda: torch.autograd.grad(
        y, x, cot, retain_graph=True, is_grads_batched=True))

    # 4. bare torch.func.vjp + vmap, all cotangents at once (the forward included)
    def f(inp):
        b, h = endpoint(model, args.output)
        try:
            model(inp)
        finally:
            h.remove()
        return b["y"]

    def func_path():
        _, vjp = torch.func.vjp(f, x.detach())
        torch.func.vmap(vjp)(cot)
    timed("bare torch.func.vjp + vmap (incl. forward)", k, func_path)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info = {"model": "ResNet-50 (torchvision layout)", "input": list(shape),
            "output": args.output, "output_shape": list(node_shape), "units": args.units,
            "k": k, "threads": args.threads, "chunk": r.settings["chunk"],
            "device": args.device,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "repeat": args.repeat,
            "units_per_second_median": {n: statistics.median(v) for n, v in rows.items()},
            "units_per_second_best": {n: max(v) for n, v in rows.items()},
            "units_per_second_all": rows,
            "cpu_seconds_per_unit_median": {n: statistics.median(v) for n, v in cpu.items()},
            "peak_rss_mib": round(peak), "load_average_1_5_15": list(os.getloadavg()),
            "torch": torch.__version__}
    print(f"{k} units ({args.units}) of {args.output} {list(node_shape)}, input "
          f"{args.size}px, {args.threads} threads, chunk {r.settings['chunk']}")
    for name, rates in rows.items():
        print(f"  {name:45s} {statistics.median(rates):8.2f} units/s median of {len(rates)} "
              f"(best {max(rates):.2f}); {statistics.median(cpu[name]):.2f} CPU s/unit")
    print(f"  peak RSS {peak:.0f} MiB")
    if device.type == "cuda":
        info["cuda_max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    suffix = "cuda" if device.type == "cuda" else f"{args.threads}t"
    print(f"  -> {write_result(f'erf_speed_{args.output}_{suffix}', info)}")
    assert np.isfinite(r.mean_map).all()


if __name__ == "__main__":
    main()
