"""The `kerastrain` command line: a thin dispatcher.

Each subcommand lives next to the code it drives, in a module exposing
``add_arguments(parser)`` and ``run(args) -> int``; this file only lists them.
User mistakes (`ValueError`, `TypeError`, a missing file) print one line and
exit with status 2; set ``KERASTRAIN_TRACEBACK=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help). Modules are imported only when their
# command runs, so `kerastrain --help` stays fast.
COMMANDS = {
    "info": ("kerastrain._info", "print version, Keras backend and devices"),
    "tune": ("kerastrain.tuning._command", "hyperparameter search (embedded default: digits MLP)"),
    "worker": ("kerastrain.tuning._worker_command", "run trials for a `tune --chief` oracle"),
    "results": ("kerastrain.tuning._results_command", "print a search's results table"),
    "diagnose": ("kerastrain.diagnostics._command", "gradient check, sanity checks, Hessian, landscape"),
    "lr-find": ("kerastrain.diagnostics._lr_find_command", "learning-rate range test (Smith 2017)"),
    "schedule": ("kerastrain.schedules._command", "print and plot a learning-rate schedule"),
}


def _version():
    from kerastrain import __version__

    return __version__


def main(argv=None):
    """Entry point of the console script; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("command", nargs="?")
    known, _ = parser.parse_known_args(argv[:1])
    parser = _parser_for(known.command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as error:
        if os.environ.get("KERASTRAIN_TRACEBACK"):
            raise
        print(f"kerastrain {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kerastrain {args.command}: interrupted", file=sys.stderr)
        return 130


def _parser_for(command):
    """The parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="kerastrain",
        description="kerastrain: train, diagnose and tune Keras 3 models "
        "(the network optimization and regularization chapter, made real).",
    )
    parser.add_argument("--version", action="version", version=f"kerastrain {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name == command:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
