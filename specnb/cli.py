"""``specnb`` command line: ``specnb demo``, ``specnb catalog``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args) -> int:
    import pandas as pd

    from .demo import run_demo

    print("specnb demo: every embedded model, offline, on a few built-in examples\n")
    summary, samples = run_demo(device=args.device)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
        print(summary.to_string(index=False))
    for name, pairs in samples.items():
        print(f"\n{name}:")
        for text, output in pairs:
            print(f"  {text[:60]:<60} -> {output}")
    print("\nmemory = measured at load (RSS delta on CPU, allocated delta on GPU); weights = tensor/file bytes")
    return 0


def _catalog(args) -> int:
    import pandas as pd

    from .catalog import catalog

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(catalog().drop(columns=["description"]).to_string(index=False))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="specnb", description="Specialist vs generalist models, side by side.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="load every embedded model and run it on built-in examples (offline)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    demo.set_defaults(func=_demo)
    cat = sub.add_parser("catalog", help="list the models specnb knows")
    cat.set_defaults(func=_catalog)
    args = parser.parse_args(argv)
    from .errors import SpecnbError

    try:
        return args.func(args)
    except SpecnbError as exc:
        print(f"specnb: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
