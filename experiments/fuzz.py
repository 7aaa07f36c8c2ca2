"""Random architectures, checked three ways: spec analysis, framework analysis, gradients.

One random *description* (a layer spec dict, see ``analytic/spec.py``) is built as a PyTorch
module and as a JAX function with positive weights. For each: the exact analytic regions of
every output position must equal the gradient-support hull (float64, one-hot cotangents,
positive inputs and weights, max pools probed as sum pools so every read input gets
gradient), the framework's analysis must equal the spec's (r, S, P and regions), and on
single paths r, S, P must equal the closed form. Seeded and reproducible; a disagreement is
shrunk (nodes removed while it persists) and printed as a minimal spec file.

``python -m experiments.fuzz --count 2000 --framework torch --seed 0``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytic import analyze
from analytic.spec import load_spec

OPS = ("conv", "conv", "conv", "pool", "pad", "add", "concat", "conv_transpose", "upsample",
       "pixel_shuffle", "slice", "pointwise")


def _size_after(n: int, k: int, s: int, d: int, b: int, a: int, ceil: bool = False) -> int:
    extent = n + b + a - (d * (k - 1) + 1)
    if extent < 0:
        return 0
    if not ceil:
        return extent // s + 1
    out = -(-extent // s) + 1
    return out - 1 if (out - 1) * s >= n + b else out


def random_description(rng: random.Random, max_nodes: int = 7) -> dict:
    """A random spec: 1-D/2-D/3-D, odd and tiny sizes, every op, branches and merges.

    Parameters stay within what PyTorch and JAX accept (pool padding <= kernel//2, reflect
    padding < size, transposed-conv output padding < stride or dilation).
    """
    ndim = rng.choice([1, 1, 2, 2, 2, 3])
    limit = {1: 40, 2: 14, 3: 7}[ndim]
    shape = tuple(rng.randint(1, limit) for _ in range(ndim))
    shapes: dict[str, tuple[int, ...]] = {"input": shape}
    nodes: list[dict] = []
    for i in range(rng.randint(1, max_nodes)):
        names = list(shapes)
        parent = rng.choice(names[-2:] if rng.random() < 0.6 else names)
        ps = shapes[parent]
        op = rng.choice(OPS)
        node: dict[str, Any] = {"name": f"n{i}", "op": op, "inputs": [parent]}
        out: tuple[int, ...]
        if op in ("conv", "pool"):
            k = [rng.randint(1, 4) for _ in ps]
            s = [rng.randint(1, 3) for _ in ps]
            d = [rng.randint(1, 2) for _ in ps]
            if op == "pool":
                pad = [[p, p] for p in (rng.randint(0, kk // 2) for kk in k)]
                ceil = rng.random() < 0.5
                node["ceil_mode"] = ceil
            else:
                pad = [[rng.randint(0, 2), rng.randint(0, 2)] for _ in ps]
                ceil = False
            node.update(kernel=k, stride=s, dilation=d, pad=pad)
            out = tuple(_size_after(n, kk, ss, dd, b, a, ceil)
                        for n, kk, ss, dd, (b, a) in zip(ps, k, s, d, pad))
        elif op == "pad":
            mode = rng.choice(["constant", "constant", "reflect", "replicate", "circular"])
            if mode == "constant":
                pad = [[rng.randint(-1, 2), rng.randint(-1, 2)] for _ in ps]
            elif mode == "reflect":
                pad = [[rng.randint(0, min(2, n - 1)), rng.randint(0, min(2, n - 1))] for n in ps]
            else:
                pad = [[rng.randint(0, min(2, n)), rng.randint(0, min(2, n))] for n in ps]
            node.update(pad=pad, mode=mode)
            out = tuple(n + b + a for n, (b, a) in zip(ps, pad))
        elif op in ("add", "concat"):
            axis: Any = "channel"
            if op == "concat" and rng.random() < 0.6:
                axis = rng.randrange(ndim)
            same = [m for m, sh in shapes.items() if (
                sh == ps if axis == "channel" else
                sh[:axis] + sh[axis + 1:] == ps[:axis] + ps[axis + 1:])]
            other = rng.choice(same)
            node["inputs"] = [parent, other]
            if axis != "channel":
                node["axis"] = axis
                out = tuple(n + (shapes[other][a] if a == axis else 0) for a, n in enumerate(ps))
            else:
                out = ps
        elif op == "conv_transpose":
            k = [rng.randint(1, 4) for _ in ps]
            s = [rng.randint(1, 3) for _ in ps]
            d = [rng.randint(1, 2) for _ in ps]
            p = [rng.randint(0, (dd * (kk - 1)) // 2) for kk, dd in zip(k, d)]
            outpad = [rng.randint(0, max(ss, dd) - 1) for ss, dd in zip(s, d)]
            node.update(kernel=k, stride=s, dilation=d, pad=[[x, x] for x in p],
                        output_padding=outpad)
            out = tuple((n - 1) * ss - 2 * pp + dd * (kk - 1) + 1 + op_
                        for n, kk, ss, dd, pp, op_ in zip(ps, k, s, d, p, outpad))
        elif op == "upsample":
            mode = rng.choice(["nearest", "nearest-exact", "linear"] if ndim == 1 else
                              ["nearest", "nearest-exact", "bilinear"] if ndim == 2 else
                              ["nearest", "nearest-exact"])
            size = [max(1, n * rng.randint(1, 3) + rng.randint(-1, 1)) for n in ps]
            node.update(mode=mode, size=size)
            if mode in ("linear", "bilinear"):
                node["align_corners"] = rng.random() < 0.5
            out = tuple(size)
        elif op == "pixel_shuffle":
            if ndim != 2:
                continue  # PyTorch's pixel shuffle is 2-D
            factor = rng.randint(2, 3)
            node.update(factor=factor)
            out = tuple(n * factor for n in ps)
        elif op == "slice":
            start = [rng.randint(0, max(0, n - 1)) for n in ps]
            step = [rng.randint(1, 3) for _ in ps]
            node.update(start=start, step=step)
            out = tuple(len(range(b, n, st)) for n, b, st in zip(ps, start, step))
        else:
            out = ps
        if any(n < 1 for n in out) or any(n > limit for n in out):
            continue
        nodes.append(node)
        shapes[node["name"]] = out
    if not nodes:
        nodes.append({"name": "n0", "op": "pointwise", "inputs": ["input"]})
    return {"input": list(shape), "nodes": nodes}


@dataclass
class Disagreement:
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


def check_description(desc: dict, frameworks: tuple[str, ...],
                      analyze_frameworks: bool = True) -> Disagreement | None:
    """All checks on one description; the first disagreement or None.

    ``analyze_frameworks=False`` skips the frontends (spec analysis vs gradients only)."""
    graph = load_spec(desc)
    names = [n["name"] for n in desc["nodes"]]
    spec_result = analyze(graph)
    spec_boxes = {n: spec_result.regions(n) for n in names}
    for fw in frameworks:
        builder = _builders()[fw]
        model, shape, oracle, options = builder(desc)
        result = analyze(model, shape, framework=fw, **options) if analyze_frameworks else None
        for name in names if result is not None else ():
            got = result.regions(name)
            want = spec_boxes[name]
            if not _same_boxes(got, want):
                return Disagreement(f"{fw} analysis != spec analysis", f"node {name}")
            r_fw, r_spec = result.node(name), spec_result.node(name)
            if (r_fw.size, r_fw.stride, r_fw.padding) != (r_spec.size, r_spec.stride,
                                                          r_spec.padding):
                return Disagreement(f"{fw} r/S/P != spec r/S/P",
                                    f"node {name}: {r_fw.size, r_fw.stride, r_fw.padding} vs "
                                    f"{r_spec.size, r_spec.stride, r_spec.padding}")
        lo, hi = oracle()
        want = spec_boxes[graph.output]
        if not _same_boxes_arrays(want.lo, want.hi, lo, hi):
            bad = np.argwhere(np.any((want.lo != lo) | (want.hi != hi), axis=0)
                              & (lo <= hi).all(axis=0))
            return Disagreement(f"{fw} gradient support != exact regions",
                                f"first position {bad[0].tolist() if len(bad) else '?'}")
    return None


def _same_boxes(a, b) -> bool:
    return _same_boxes_arrays(a.lo, a.hi, b.lo, b.hi)


def _same_boxes_arrays(lo1, hi1, lo2, hi2) -> bool:
    e1, e2 = np.any(lo1 > hi1, axis=0), np.any(lo2 > hi2, axis=0)
    if lo1.shape != lo2.shape or not np.array_equal(e1, e2):
        return False
    keep = ~e1
    return bool(np.array_equal(lo1[:, keep], lo2[:, keep])
                and np.array_equal(hi1[:, keep], hi2[:, keep]))


def _builders() -> dict[str, Callable]:
    from experiments import fuzz_torch
    builders = {"torch": fuzz_torch.build}
    try:
        from experiments import fuzz_jax
        builders["jax"] = fuzz_jax.build
    except ImportError:
        pass
    return builders


def shrink(desc: dict, frameworks: tuple[str, ...]) -> dict:
    """Remove nodes (rewiring users to the removed node's first input) while it still fails."""
    current = desc
    changed = True
    while changed:
        changed = False
        for i in range(len(current["nodes"]) - 1, -1, -1):
            cand = _without(current, i)
            if cand is None:
                continue
            try:
                failing = check_description(cand, frameworks) is not None
            except Exception:
                failing = False  # a candidate that no longer builds is not a smaller failure
            if failing:
                current, changed = cand, True
                break
    return current


def _without(desc: dict, i: int) -> dict | None:
    nodes = [dict(n) for n in desc["nodes"]]
    victim = nodes.pop(i)
    if not nodes:
        return None
    for n in nodes:
        n["inputs"] = [victim["inputs"][0] if x == victim["name"] else x for x in n["inputs"]]
    cand = {"input": desc["input"], "nodes": nodes}
    try:
        load_spec(cand)
    except Exception:
        return None
    return cand


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--framework", choices=("torch", "jax", "both"), default="both")
    parser.add_argument("--out", default=None, help="write a JSON report here")
    args = parser.parse_args(argv)
    frameworks = ("torch", "jax") if args.framework == "both" else (args.framework,)
    failures, t0 = [], time.time()
    for k in range(args.count):
        desc = random_description(random.Random(args.seed * 1_000_003 + k))
        try:
            bad = check_description(desc, frameworks)
        except Exception as e:  # a crash is a disagreement too
            bad = Disagreement("crash", f"{type(e).__name__}: {e}")
        if bad is not None:
            small = shrink(desc, frameworks) if bad.what != "crash" else desc
            failures.append({"case": k, "what": str(bad), "spec": small})
            print(f"case {k}: {bad}\nminimal spec:\n{json.dumps(small)}", file=sys.stderr)
        if (k + 1) % 50 == 0:
            print(f"{k + 1}/{args.count} checked, {len(failures)} disagreements, "
                  f"{time.time() - t0:.0f}s", file=sys.stderr)
    report = {"count": args.count, "seed": args.seed, "frameworks": list(frameworks),
              "disagreements": len(failures), "failures": failures,
              "seconds": round(time.time() - t0, 1)}
    if args.out:
        from experiments.io import write_json
        write_json(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
