"""``erf measure`` and ``erf check``: the measurement sub-commands of the ``erf`` CLI.

``erf measure TARGET --input-shape ... --out DIR`` writes ``DIR/results.json`` (units, metrics,
analytic r/S/P and regions, settings, versions), ``DIR/erf.npy`` (the mean map, the input's
spatial shape) and ``DIR/erf.png`` (heatmap with the analytic box and centre).
``erf check TARGET --input-shape ...`` prints the containment summary and exits 0 when every
gradient lies inside its unit's region, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from analytic.errors import SpecError

UNITS_HELP = ("center, grid:N (N per axis), all, or positions 'i,j;k,l' "
              "(default: %(default)s)")


def parse_units(text: str):
    """'center' / 'grid:N' / 'all' as they are; '3,4;5,6' -> [(3, 4), (5, 6)]."""
    if text.strip().lower() in ("center", "all") or text.strip().lower().startswith("grid:"):
        return text
    try:
        return [tuple(int(i) for i in part.split(",") if i.strip())
                for part in text.split(";") if part.strip()]
    except ValueError:
        raise SpecError(f"--units {text!r}: use center, grid:N, all or positions like "
                        "'3,4;5,6'") from None


def _load(args: argparse.Namespace):
    from erf.targets import load_target, parse_shape
    target = load_target(args.target, args.framework)
    if target.framework == "spec":
        raise SpecError(f"{args.target} is a layer spec: it describes geometry only, there is "
                        "no model to measure. Use `erf analyze` for it, or give a torch/JAX "
                        "model (package.module:attr or a zoo name)")
    shape = target.input_shape(parse_shape(args.input_shape))
    if shape is None:
        raise SpecError(f"{args.target}: give --input-shape (e.g. 1,3,224,224)")
    return target, shape


def _common(p: argparse.ArgumentParser, units: str, samples: int) -> None:
    p.add_argument("target", help="package.module:attr (an nn.Module, a JAX function or "
                   "(fn, params)), or a zoo name")
    p.add_argument("--input-shape", help="full input shape (1,3,224,224), or a spatial size "
                   "for zoo models (224)")
    p.add_argument("--output", help="end-point: node name or module path (default: output)")
    p.add_argument("--units", default=units, help=UNITS_HELP)
    p.add_argument("--samples", type=int, default=samples, help="random inputs (and weight "
                   "draws with --init) to average over (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-dist", choices=("normal", "uniform", "ones"), default="normal",
                   help="random inputs: N(0,1), U[0,1) or all ones (default: %(default)s)")
    p.add_argument("--init", choices=("normal", "uniform", "ones"),
                   help="re-draw the weights per sample (default: keep the model's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--framework", choices=("torch", "jax"), help="default: detected")
    p.add_argument("--chunk", type=int, help="impulses per backward pass (default: sized to "
                   "memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_measure(args: argparse.Namespace) -> int:
    from erf.measure import measure
    target, shape = _load(args)
    result = measure(target.obj, shape, output=args.output, units=parse_units(args.units),
                     samples=args.samples, seed=args.seed, device=args.device,
                     framework=target.framework, init=args.init, input_dist=args.input_dist,
                     chunk=args.chunk, pack=args.pack, crop=args.crop, layout=target.layout,
                     variants=tuple(v for v in args.variants.split(",") if v),
                     progress=not args.quiet and sys.stderr.isatty())
    result.settings["model"] = target.name
    out = result.save(args.out)
    print(result.summary())
    print(f"wrote {out / 'results.json'}, {out / 'erf.npy'}, {out / 'erf.png'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from erf.check import check
    target, shape = _load(args)
    result = check(target.obj, shape, output=args.output, units=parse_units(args.units),
                   samples=args.samples, seed=args.seed, tol=args.tol, device=args.device,
                   framework=target.framework, init=args.init, input_dist=args.input_dist,
                   chunk=args.chunk, layout=target.layout,
                   progress=not args.quiet and sys.stderr.isatty())
    result.settings["model"] = target.name
    print(json.dumps(result.to_dict()) if args.json else result.summary())
    return 0 if result.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("measure", help="measure the effective receptive field by unit "
                              "impulses; write results.json, erf.npy, erf.png")
    _common(p, "center", 1)
    p.add_argument("--out", required=True, help="directory for the results")
    p.add_argument("--pack", action="store_true", help="share backward passes between units "
                   "with disjoint exact regions")
    p.add_argument("--crop", action="store_true", help="measure each unit on a crop of the "
                   "input holding its exact region (exact; checked at the crop size, falls "
                   "back to the full input and says why where padding depends on the size)")
    p.add_argument("--variants", default="abs", help="comma list of abs, signed, squared")
    p.set_defaults(func=cmd_measure)

    from erf.check import DEFAULT_TOL
    p = subparsers.add_parser("check", help="check that gradients stay inside the exact "
                              "analytic regions; exit 1 on a violation")
    _common(p, "grid:4", 2)
    p.add_argument("--tol", type=float, default=DEFAULT_TOL, help="gradient counted as nonzero "
                   "above this fraction of the unit's max (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_check)
