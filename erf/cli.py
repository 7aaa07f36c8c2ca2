"""The ``erf`` command line: analyze, ops, zoo (and measure, check, run from their modules).

Every failure prints one ``error: ...`` line on stderr and exits 1; ``--traceback`` shows more.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence

from analytic.errors import ErfError

# modules that add sub-commands: each has ``register(subparsers)`` setting ``func``
COMMAND_MODULES: tuple[str, ...] = ("erf.cli_measure",)


def cmd_analyze(args: argparse.Namespace) -> int:
    from analytic import analyze
    from erf.targets import load_target, parse_shape
    target = load_target(args.target, args.framework)
    shape = target.input_shape(parse_shape(args.input_shape))
    if shape is None and target.framework != "spec":
        raise ErfError(f"{args.target}: give --input-shape (e.g. 1,3,224,224)")
    options = {"layout": target.layout} if target.layout and target.framework == "jax" else {}
    result = analyze(target.obj, shape, output=args.output, framework=target.framework,
                     **options)
    if args.json:
        print(json.dumps(result.to_dict(regions=args.regions)))
        return 0
    regions = result.axis_regions() if args.regions else None  # before printing: may fail
    print(result.table())
    if args.regions:
        if regions is None:
            print("\nregions are not separable per axis; use --json for the per-position boxes")
        else:
            for a, rows in enumerate(regions):
                text = " ".join("-" if r is None else f"[{r[0]},{r[1]}]" for r in rows)
                print(f"\nregions along input axis {a}: {text}")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    if args.framework == "spec":
        from analytic.spec import spec_ops
        for name, fields in spec_ops():
            print(f"{name:16s} {', '.join(fields)}")
        return 0
    try:
        frontend = importlib.import_module(f"analytic.frontends.{args.framework}")
    except ImportError as e:
        raise ErfError(f"the {args.framework} frontend needs {args.framework} installed ({e}); "
                       f"pip install 'erfsuite[{args.framework}]'") from None
    for op, rule in frontend.supported_ops():
        print(f"{op:48s} {rule}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from experiments.models import zoo
    for name, entry in sorted(zoo.ZOO.items()):
        print(f"{name:22s} {','.join(entry.factories):10s} {entry.description}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from experiments.runner import run
    out = run(args.config, out=args.out, device=args.device, force=args.force,
              progress=not args.quiet)
    print(f"results in {out}/ (summary: {out / 'summary.md'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erf", description=__doc__.splitlines()[0])
    parser.add_argument("--traceback", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="receptive field size, stride, padding of every node")
    p.add_argument("target", help="spec file (.json/.toml), package.module:attr, or zoo name")
    p.add_argument("--input-shape", help="full input shape (1,3,224,224), or a spatial size "
                   "for zoo models (224); overrides a spec file's input")
    p.add_argument("--output", help="end-point: node name or module path (default: output)")
    p.add_argument("--framework", choices=("spec", "torch", "jax"), help="default: detected")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--regions", action="store_true", help="exact region of every output position")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("ops", help="list the supported ops of a frontend")
    p.add_argument("framework", nargs="?", default="spec", choices=("spec", "torch", "jax"))
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("zoo", help="list the registered model names")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("run", help="run an experiment config (TOML); resumable")
    p.add_argument("config", help="configs/NAME.toml")
    p.add_argument("--out", help="output directory (default runs/<name>)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="override the config's device")
    p.add_argument("--force", action="store_true", help="recompute finished items")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `erf ... | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except Exception as e:  # one line for the user; the traceback on request
        if args.traceback:
            raise
        kind = "" if isinstance(e, ErfError) else f"unexpected {type(e).__name__}: "
        message = " ".join(str(e).split("\n")[:1]) if not isinstance(e, ErfError) else str(e)
        print(f"error: {kind}{message}", file=sys.stderr)
        if not isinstance(e, ErfError):
            print("(this is a bug or an unchecked input: rerun with --traceback and report it)",
                  file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
