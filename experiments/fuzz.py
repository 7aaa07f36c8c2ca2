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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytic import analyze
from analytic.spec import load_spec

OPS = ("conv", "conv", "conv", "padded_conv", "pool", "pad", "add", "mul", "concat",
       "conv_transpose", "upsample", "pixel_shuffle", "pixel_unshuffle", "slice", "pointwise",
       "global", "block", "block")


def size_after(n: int, k: int, s: int, d: int, b: int, a: int, ceil: bool = False) -> int:
    """Output size of a window (kernel k, stride s, dilation d, padding b before and a after;
    PyTorch's ceil_mode rule: the last window starts inside the input or left padding)."""
    extent = n + b + a - (d * (k - 1) + 1)
    if extent < 0:
        return 0
    if not ceil:
        return extent // s + 1
    out = -(-extent // s) + 1
    return out - 1 if (out - 1) * s >= n + b else out


def _window_node(rng: random.Random, op: str, name: str, parent: str, ps: tuple[int, ...],
                 stride: list[int] | None = None) -> tuple[dict, tuple[int, ...]]:
    """A random conv or pool node and its output shape (sizes may come out < 1)."""
    k = [rng.randint(1, 4) for _ in ps]
    s = stride or [rng.randint(1, 3) for _ in ps]
    d = [rng.randint(1, 2) for _ in ps]
    node: dict[str, Any] = {"name": name, "op": op, "inputs": [parent]}
    if op == "pool":
        pad = [[p, p] for p in (rng.randint(0, kk // 2) for kk in k)]
        ceil = rng.random() < 0.5
        node["ceil_mode"] = ceil
    else:
        pad = [[rng.randint(0, 2), rng.randint(0, 2)] for _ in ps]
        ceil = False
    node.update(kernel=k, stride=s, dilation=d, pad=pad)
    out = tuple(size_after(n, kk, ss, dd, b, a, ceil)
                for n, kk, ss, dd, (b, a) in zip(ps, k, s, d, pad))
    return node, out


def _block(rng: random.Random, first: int, parent: str, ps: tuple[int, ...],
           limit: int) -> tuple[list[dict], tuple[int, ...]] | None:
    """A multi-branch block: 2-3 branches of 0-2 convs/pools from ``parent`` (the first conv
    or pool of a branch takes the block's stride; an empty branch is an identity shortcut),
    brought to the first branch's shape by a constant pad or crop with a random split (so
    shortcuts are often misaligned), merged by add, mul or channel concat."""
    stride = [rng.choice([1, 1, 2]) for _ in ps]
    nodes: list[dict] = []
    ends: list[tuple[str, tuple[int, ...]]] = []

    def name() -> str:
        return f"n{first + len(nodes)}"

    for b in range(rng.randint(2, 3)):
        cur, cs = parent, ps
        for j in range(rng.randint(1 if b == 0 else 0, 2)):
            op = rng.choice(["conv", "conv", "pool"])
            node, out = _window_node(rng, op, name(), cur, cs, stride if j == 0 else
                                     [1] * len(ps))
            if any(n < 1 or n > limit for n in out):
                return None
            nodes.append(node)
            cur, cs = node["name"], out
        ends.append((cur, cs))
    target = ends[0][1]
    inputs = [ends[0][0]]
    for cur, cs in ends[1:]:
        if cs != target:
            pad = []
            for n, t in zip(cs, target):
                total = t - n
                before = rng.randint(0, total) if total >= 0 else -rng.randint(0, -total)
                pad.append([before, total - before])
            nodes.append({"name": name(), "op": "pad", "inputs": [cur], "pad": pad})
            cur = nodes[-1]["name"]
        inputs.append(cur)
    merge = rng.choice(["add", "add", "mul", "concat"])
    nodes.append({"name": name(), "op": merge, "inputs": inputs})
    return nodes, target


def random_description(rng: random.Random, max_nodes: int = 7) -> dict:
    """A random spec: 1-D/2-D/3-D, odd and tiny sizes down to 1-pixel maps, every spec op,
    branches and merges, multi-branch blocks with (mis)aligned shortcuts, convs with
    reflect/replicate/circular padding (a pad node the torch builder turns into
    ``padding_mode``).

    Parameters stay within what PyTorch and JAX accept (pool padding <= kernel//2, reflect
    padding < size, transposed-conv output padding < stride or dilation).
    """
    ndim = rng.choice([1, 1, 2, 2, 2, 3])
    limit = {1: 40, 2: 14, 3: 7}[ndim]
    shape = tuple(rng.randint(1, limit) for _ in range(ndim))
    shapes: dict[str, tuple[int, ...]] = {"input": shape}
    nodes: list[dict] = []
    for _ in range(rng.randint(1, max_nodes)):
        i = len(nodes)
        names = list(shapes)
        parent = rng.choice(names[-2:] if rng.random() < 0.6 else names)
        ps = shapes[parent]
        op = rng.choice(OPS)
        node: dict[str, Any] = {"name": f"n{i}", "op": op, "inputs": [parent]}
        out: tuple[int, ...]
        if op == "block":
            made = _block(rng, i, parent, ps, limit)
            if made is None:
                continue
            block, out = made
            nodes += block
            shapes[block[-1]["name"]] = out  # inner nodes are not reused outside the block
            continue
        if op == "padded_conv":
            mode = rng.choice(["reflect", "replicate", "circular"])
            cap = {"reflect": [n - 1 for n in ps], "replicate": [2] * ndim,
                   "circular": list(ps)}[mode]
            pad = [[p, p] for p in (rng.randint(0, min(2, c)) for c in cap)]
            padded = tuple(n + 2 * p for n, (p, _) in zip(ps, pad))
            conv, out = _window_node(rng, "conv", f"n{i + 1}", f"n{i}", padded)
            conv["pad"] = [[0, 0] for _ in ps]
            out = tuple(size_after(n, kk, ss, dd, 0, 0) for n, kk, ss, dd in
                        zip(padded, conv["kernel"], conv["stride"], conv["dilation"]))
            if any(n < 1 or n > limit for n in out):
                continue
            nodes += [{"name": f"n{i}", "op": "pad", "inputs": [parent], "pad": pad,
                       "mode": mode}, conv]
            shapes[conv["name"]] = out
            continue
        if op in ("conv", "pool"):
            node, out = _window_node(rng, op, f"n{i}", parent, ps)
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
        elif op in ("add", "mul", "concat"):
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
        elif op in ("pixel_shuffle", "pixel_unshuffle"):
            if ndim != 2:
                continue  # PyTorch's pixel (un)shuffle is 2-D
            factor = rng.randint(2, 3)
            node.update(factor=factor)
            if op == "pixel_shuffle":
                out = tuple(n * factor for n in ps)
            elif any(n % factor for n in ps):
                continue
            else:
                out = tuple(n // factor for n in ps)
        elif op == "slice":
            start = [rng.randint(0, max(0, n - 1)) for n in ps]
            step = [rng.randint(1, 3) for _ in ps]
            node.update(start=start, step=step)
            out = tuple(len(range(b, n, st)) for n, b, st in zip(ps, start, step))
        elif op == "global":
            out = (1,) * ndim
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


@dataclass
class Checked:
    """What one description's check compared (for the report)."""

    nodes: int = 0  # node comparisons, spec vs framework
    merged: int = 0  # nodes not compared: held in a view's merged layout (Built.views)
    closed_form: int = 0  # nodes on a single path checked against the closed form
    inexact: dict[str, str] = field(default_factory=dict)  # framework -> why spec was skipped


def check_description(desc: dict, frameworks: tuple[str, ...],
                      analyze_frameworks: bool = True,
                      checked: Checked | None = None) -> Disagreement | None:
    """All checks on one description; the first disagreement or None.

    Only the output's ancestors are compared (an export may drop dead branches). Per node:
    framework analysis == spec analysis (regions of every position, r, S, P); single paths of
    sliding windows: spec r, S, P == the closed form (DESIGN §2); the output: framework and
    spec regions == the gradient-support hull. Floating-point upsampling at exact ties: where
    the framework's forward op is not exactly the spec's (``Built.inexact``), the spec
    comparisons downstream of it are skipped (framework analysis vs gradients still holds);
    where its gradient does not follow its own forward (``Built.grad_inexact``), the gradient
    comparisons downstream are skipped (framework vs spec analysis still holds).
    ``analyze_frameworks=False`` skips the frontends (spec analysis vs gradients only)."""
    checked = checked if checked is not None else Checked()
    graph = load_spec(desc)
    live = graph.ancestors([graph.output]) - {graph.input}
    names = [n["name"] for n in desc["nodes"] if n["name"] in live]
    spec_result = analyze(graph)
    bad = _closed_form(desc, graph, spec_result, names, checked)
    if bad is not None:
        return bad
    for fw in frameworks:
        built = _builders()[fw](desc)
        tainted = _downstream(graph, set(built.inexact)) & live
        no_grad = _downstream(graph, set(built.grad_inexact)) & live
        no_rsp = _downstream(graph, set(built.composite)) & live
        merged = _downstream(graph, set(built.views)) & live
        if tainted or no_grad:
            checked.inexact[fw] = "; ".join(f"{k}: {v}" for k, v in {
                **built.inexact, **built.grad_inexact}.items() if k in live)
        with built.context():
            result = analyze(built.model, built.shape, framework=fw, **built.options) \
                if analyze_frameworks else None
        for name in names if result is not None else ():
            if name in built.fused or name in tainted:
                continue
            if name in merged and _positions(result.regions(name)) != _positions(
                    spec_result.regions(name)):
                checked.merged += 1  # held in a view's merged layout: see Built.views
                continue
            checked.nodes += 1
            bad = _compare_boxes(_in_input_order(result, name), spec_result.regions(name))
            if bad:
                return Disagreement(f"{fw} analysis != spec analysis", f"node {name}: {bad}")
            if name in no_rsp:
                continue
            r_fw, r_spec = result.node(name), spec_result.node(name)
            if (r_fw.size, r_fw.stride, r_fw.padding) != (r_spec.size, r_spec.stride,
                                                          r_spec.padding):
                return Disagreement(f"{fw} r/S/P != spec r/S/P",
                                    f"node {name}: {r_fw.size, r_fw.stride, r_fw.padding} vs "
                                    f"{r_spec.size, r_spec.stride, r_spec.padding}")
        if graph.output in no_grad:
            continue  # the gradients do not follow the forward here: they cannot judge
        with built.context():
            lo, hi = built.oracle()
        if result is not None:
            got = _in_input_order(result, None)  # the framework's own output node
            bad = _compare_arrays(got.lo, got.hi, lo, hi)
            if bad:
                return Disagreement(f"{fw} analysis != {fw} gradient support",
                                    f"output {graph.output}: {bad}")
        if graph.output not in tainted:
            want = spec_result.regions(graph.output)
            bad = _compare_arrays(want.lo, want.hi, lo, hi)
            if bad:
                return Disagreement(f"spec analysis != {fw} gradient support",
                                    f"output {graph.output}: {bad}")
    return None


_WINDOWS = {"conv", "pool", "pad", "slice", "pointwise"}


def _closed_form(desc: dict, graph, result, names: list[str],
                 checked: Checked) -> Disagreement | None:
    """r, S, P of every node whose ancestry is one chain of sliding windows, by the closed
    form ``r = 1 + sum (k_l - 1) prod_{i<l} s_i``, ``S = prod s_l``,
    ``P = sum p_l prod_{i<l} s_i`` (k the dilated kernel, p the left pad, a slice a stride
    ``step`` window with pad ``-start``)."""
    by_name = {n["name"]: n for n in desc["nodes"]}
    ndim = len(desc["input"])
    for name in names:
        chain, cur = [], name
        while cur != graph.input:
            node = by_name[cur]
            if node["op"] not in _WINDOWS or len(node["inputs"]) != 1:
                chain = None
                break
            chain.append(node)
            cur = node["inputs"][0]
        if chain is None:
            continue
        want = []
        for a in range(ndim):
            r, S, P = 1, 1, 0
            for node in reversed(chain):  # from the input
                k, s, p = _axis_window(node, a, ndim)
                r, P, S = r + (k - 1) * S, P + p * S, S * s
            want.append((r, S, P))
        got = list(zip(*(result.node(name).size, result.node(name).stride,
                         result.node(name).padding)))
        checked.closed_form += 1
        if got != want:
            return Disagreement("spec r/S/P != closed form",
                                f"node {name}: {got} vs closed form {want}")
    return None


def _axis_window(node: dict, a: int, ndim: int) -> tuple[int, int, int]:
    """(dilated kernel, stride, left pad) of a sliding-window node on axis ``a``."""
    def per_axis(key: str, default: Any) -> Any:
        v = node.get(key, default)
        return v[a] if isinstance(v, list) else v
    if node["op"] == "pointwise":
        return 1, 1, 0
    if node["op"] == "slice":
        return 1, per_axis("step", 1), -per_axis("start", 0)
    pad = per_axis("pad", 0)
    left = pad[0] if isinstance(pad, list) else pad
    if node["op"] == "pad":
        return 1, 1, left
    return per_axis("dilation", 1) * (per_axis("kernel", 1) - 1) + 1, per_axis("stride", 1), left


def _positions(boxes) -> list[int]:
    return [n for n in boxes.lo.shape[1:] if n != 1]


def _in_input_order(result, name: str | None):
    """A node's regions with its axes in input-axis order. A frontend may hold a node's axes
    in another order (JAX: a ``dot_general`` puts the resized axis last, a transpose that is
    no node puts it back); where every input axis has one node axis, reorder them."""
    from analytic.regions import Boxes
    boxes = result.regions(name)
    node = result.node(name).name
    axes = result.propagation.axis_of[node]
    if (len(axes) == boxes.lo.ndim - 1 and None not in axes
            and sorted(axes) == list(range(len(axes))) and list(axes) != sorted(axes)):
        perm = (0, *[1 + j for j in axes])
        return Boxes(boxes.lo.transpose(perm), boxes.hi.transpose(perm))
    return boxes


def _downstream(graph, roots: set[str]) -> set[str]:
    out = set(roots)
    for node in graph:  # topological order
        if any(i in out for i in node.inputs):
            out.add(node.name)
    return out


def _compare_boxes(a, b) -> str:
    return _compare_arrays(a.lo, a.hi, b.lo, b.hi)


def _compare_arrays(lo1, hi1, lo2, hi2) -> str:
    """'' when both give the same box at every position (empty positions: lo > hi on some
    axis), else the first difference. Size-1 axes carry no position: nodes that differ only in
    them are compared without them (a frontend may keep a reduced axis as size 1 or drop it);
    a node with a single position (no axes left, e.g. a global reduction whose result a view
    spreads over new dims) stands for every position of the other."""
    if lo1.shape != lo2.shape:
        s1 = [n for n in lo1.shape[1:] if n != 1]
        s2 = [n for n in lo2.shape[1:] if n != 1]
        if s1 == s2:
            lo1, hi1, lo2, hi2 = (a.reshape(len(a), *s1) for a in (lo1, hi1, lo2, hi2))
        elif not s1 or not s2:
            shape = lo2.shape if not s1 else lo1.shape
            lo1, hi1, lo2, hi2 = (np.broadcast_to(a.reshape(len(a), *[1] * (len(shape) - 1)),
                                                  shape) if a.size == len(a) else a
                                  for a in (lo1, hi1, lo2, hi2))
        else:
            return f"shapes {list(lo1.shape[1:])} vs {list(lo2.shape[1:])}"
    e1, e2 = np.any(lo1 > hi1, axis=0), np.any(lo2 > hi2, axis=0)
    diff = (e1 != e2) | (~e1 & (np.any(lo1 != lo2, axis=0) | np.any(hi1 != hi2, axis=0)))
    if not diff.any():
        return ""
    pos = tuple(int(i) for i in np.argwhere(diff)[0])
    t = (slice(None), *pos)

    def box(lo, hi, empty) -> str:
        return "empty" if empty[pos] else f"{lo[t].tolist()}..{hi[t].tolist()}"
    return (f"{int(diff.sum())} position(s) differ, first {list(pos)}: "
            f"{box(lo1, hi1, e1)} vs {box(lo2, hi2, e2)}")


def _builders() -> dict[str, Callable]:
    builders: dict[str, Callable] = {}
    try:
        from experiments import fuzz_torch
        builders["torch"] = fuzz_torch.build
    except ImportError:
        pass
    try:
        from experiments import fuzz_jax
        builders["jax"] = fuzz_jax.build
    except ImportError:
        pass
    return builders


def failure(desc: dict, frameworks: tuple[str, ...]) -> Disagreement | None:
    """``check_description``, with a crash reported as a disagreement."""
    try:
        return check_description(desc, frameworks)
    except Exception as e:  # noqa: BLE001 - a crash is a disagreement too
        return Disagreement("crash", f"{type(e).__name__}: {str(e)[:300]}")


def shrink(desc: dict, frameworks: tuple[str, ...],
           fails: Callable[[dict], Disagreement | None] | None = None,
           first: Disagreement | None = None) -> dict:
    """A smaller description that fails the same way (same kind of disagreement): dead nodes
    dropped, then nodes removed one at a time (users rewired to the removed node's first
    input) while it still fails. ``fails``: the check (default :func:`failure`)."""
    fails = fails or (lambda d: failure(d, frameworks))
    first = first or fails(desc)
    if first is None:
        return desc
    current = _live_only(desc)
    if current is not desc and _same_kind(fails(current), first) is False:
        current = desc
    changed = True
    while changed:
        changed = False
        for i in range(len(current["nodes"]) - 1, -1, -1):
            cand = _without(current, i)
            if cand is None:
                continue
            if _same_kind(fails(cand), first):
                current, changed = _live_only(cand), True
                break
    return current


def _same_kind(bad: Disagreement | None, first: Disagreement) -> bool:
    return bad is not None and bad.what == first.what and (
        bad.what != "crash" or bad.detail.split(":")[0] == first.detail.split(":")[0])


def _live_only(desc: dict) -> dict:
    graph = load_spec(desc)
    live = graph.ancestors([graph.output])
    nodes = [n for n in desc["nodes"] if n["name"] in live]
    if len(nodes) == len(desc["nodes"]):
        return desc
    return {**desc, "nodes": nodes}


def _without(desc: dict, i: int) -> dict | None:
    nodes = [dict(n) for n in desc["nodes"]]
    victim = nodes.pop(i)
    if not nodes:
        return None
    for n in nodes:
        n["inputs"] = [victim["inputs"][0] if x == victim["name"] else x for x in n["inputs"]]
    cand = {k: v for k, v in desc.items() if k != "output"} | {"nodes": nodes}
    if desc.get("output") not in (None, victim["name"]):
        cand["output"] = desc["output"]
    try:
        load_spec(cand)
    except Exception:  # noqa: BLE001 - shapes no longer fit: not a candidate
        return None
    return cand


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first case index (resume a run "
                        "after a case that aborted the process, e.g. an XLA compiler check)")
    parser.add_argument("--verbose", action="store_true", help="name each case before it runs")
    parser.add_argument("--framework", choices=("torch", "jax", "both"), default="both")
    parser.add_argument("--out", default=None, help="write a JSON report here")
    parser.add_argument("--capture", choices=("auto", "fast", "export"), default="auto",
                        help="PyTorch frontend capture (default: auto = fast, export fallback)")
    args = parser.parse_args(argv)
    if args.capture != "auto":
        from experiments import fuzz_torch
        fuzz_torch.CAPTURE = args.capture
    frameworks = ("torch", "jax") if args.framework == "both" else (args.framework,)
    missing = [fw for fw in frameworks if fw not in _builders()]
    if missing:
        print(f"error: no fuzz builder for {', '.join(missing)} (experiments/fuzz_"
              f"{missing[0]}.py and its framework must be importable); use --framework "
              f"{' or '.join(sorted(_builders())) or 'torch'}", file=sys.stderr)
        return 1
    report = run(args.count, args.seed, frameworks, log=sys.stderr, start=args.start,
                 verbose=args.verbose)
    if args.out:
        from experiments.io import write_json
        write_json(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("failures", "inexact")}))
    return 1 if report["failures"] else 0


def run(count: int, seed: int, frameworks: tuple[str, ...], log: Any = None, start: int = 0,
        verbose: bool = False) -> dict:
    """Check ``count`` descriptions of ``seed`` from case ``start``; the report (failures
    shrunk)."""
    failures: list[dict] = []
    inexact: list[dict] = []
    skipped: dict[str, dict[str, int]] = {fw: {} for fw in frameworks}
    compared = closed = merged = 0
    t0 = time.time()
    for k in range(start, start + count):
        if verbose and log:
            print(f"case {k}", file=log, flush=True)
        desc = random_description(random.Random(seed * 1_000_003 + k))
        fws = []
        for fw in frameworks:
            why = _builders()[fw].__globals__.get("inexpressible", lambda d: None)(desc)
            if why:
                skipped[fw][why] = skipped[fw].get(why, 0) + 1
            else:
                fws.append(fw)
        checked = Checked()
        if not fws:
            continue
        try:
            bad = check_description(desc, tuple(fws), checked=checked)
        except Exception as e:  # noqa: BLE001 - a crash is a disagreement too
            bad = Disagreement("crash", f"{type(e).__name__}: {str(e)[:300]}")
        compared += checked.nodes
        closed += checked.closed_form
        merged += checked.merged
        if checked.inexact:
            inexact.append({"case": k, "frameworks": checked.inexact})
        if bad is not None:
            small = shrink(desc, tuple(fws), first=bad)
            failures.append({"case": k, "what": str(bad), "spec": small})
            if log:
                print(f"case {k}: {bad}\nminimal spec:\n{json.dumps(small)}", file=log)
        if log and (k + 1 - start) % 50 == 0:
            print(f"{k + 1 - start}/{count} checked, {len(failures)} disagreements, "
                  f"{time.time() - t0:.0f}s", file=log)
    return {"count": count, "start": start, "seed": seed, "frameworks": list(frameworks),
            "disagreements": len(failures), "node_comparisons": compared,
            "closed_form_checks": closed, "merged_layout_nodes": merged, "skipped": skipped,
            "inexact_upsampling": len(inexact), "seconds": round(time.time() - t0, 1),
            "failures": failures, "inexact": inexact}



# ---- floating-point ties of a framework's interpolation -----------------------------------


def find_ties(desc: dict, make_op: Callable, axis_reads: Callable,
              who: str) -> tuple[dict[str, str], dict[str, str]]:
    """Per upsample node of ``desc``: where the framework's op (``make_op(node, ir_node)``)
    reads other pixels than the spec's exact definition forward, and where its gradient lands
    elsewhere than its forward reads (``axis_reads(op, in_shape, out_shape, axis)`` gives both
    per output position). First differing position per node, as messages."""
    from analytic.spec import load_spec

    graph = load_spec(desc)
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    for node in desc["nodes"]:
        if node["op"] != "upsample":
            continue
        ir = graph[node["name"]]
        in_shape = graph[node["inputs"][0]].shape
        op = make_op(node, ir)
        for a in range(len(desc["input"])):
            n, m = in_shape[a], ir.shape[a]
            exact = [sorted(int(v) for v in row if v >= 0)
                     for row in ir.edges[0].axes[a].reads(n, m)]
            fwd, bwd = axis_reads(op, in_shape, ir.shape, a)
            tie_notes(node, a, n, m, exact, fwd, bwd, forward, backward, who)
    return forward, backward


def tie_notes(node: dict, a: int, n: int, m: int, exact: list, fwd: list, bwd: list,
              forward: dict, backward: dict, who: str = "torch") -> None:
    """Record the first position where a framework's forward reads differ from the exact
    definition, and where its gradient differs from its forward."""
    where = f"{node.get('mode', 'nearest')} {n}->{m} on axis {a}"
    if fwd != exact and node["name"] not in forward:
        o = next(i for i in range(m) if fwd[i] != exact[i])
        forward[node["name"]] = (f"{where}: {who} reads {fwd[o]} at position {o}, the exact "
                                 f"definition {exact[o]}")
    if bwd != fwd and node["name"] not in backward:
        o = next(i for i in range(m) if bwd[i] != fwd[i])
        backward[node["name"]] = (f"{where}: position {o} reads {fwd[o]} forward, its "
                                  f"gradient goes to {bwd[o]}")


def mask_boxes(mask: np.ndarray, out_spatial: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi), each (D, *out_spatial), of the bounding box of each output position's nonzero
    input gradient (``mask``: (n_out, *in_spatial)); lo > hi where it is empty."""
    D = mask.ndim - 1
    n_out = len(mask)
    lo = np.ones((D, n_out), dtype=np.int64)
    hi = np.zeros((D, n_out), dtype=np.int64)
    for o in range(n_out):
        nz = np.argwhere(mask[o])
        if len(nz):
            lo[:, o], hi[:, o] = nz.min(axis=0), nz.max(axis=0)
    return lo.reshape(D, *out_spatial), hi.reshape(D, *out_spatial)

if __name__ == "__main__":
    sys.exit(main())
