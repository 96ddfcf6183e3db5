"""`python -m bench NAME [NAME ...] [--quick] [--out DIR]`."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from bench._harness import report


def available():
    """Benchmark module names in this package."""
    here = os.path.dirname(__file__)
    return sorted(
        info.name for info in pkgutil.iter_modules([here]) if not info.name.startswith("_")
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {available()})")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        report(name, module.run(quick=args.quick), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
