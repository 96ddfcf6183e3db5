"""The `kerastrain` command line: a thin dispatcher.

Each subcommand lives next to the code it drives, in a module exposing
``add_arguments(parser)`` and ``run(args) -> int``; this file only lists them.
User mistakes (`ValueError`, `TypeError`, a missing file) print one line and
exit with status 2; set ``KERASTRAIN_TRACEBACK=1`` to see the traceback.

Nothing here imports Keras: `--help`, `--version` and argument errors answer
in well under a second. While a command runs, what native libraries write to
the process's standard error (TensorFlow's start-up lines, ``cuInit`` errors,
XLA and grappler logs) is discarded, and absl/TensorFlow Python logging shows
errors only; Python's own ``sys.stderr`` (warnings, errors, progress bars)
is untouched. ``--verbose`` on any command shows everything.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
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
    argv = list(sys.argv[1:] if argv is None else argv)
    with contextlib.ExitStack() as stack:
        # before the parser: adding a command's arguments may import Keras
        if "--verbose" not in argv[1:]:
            stack.enter_context(quiet_native_logs())
        return _main(argv)


def _main(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("command", nargs="?")
    known, _ = parser.parse_known_args(argv[:1])
    parser = _parser_for(known.command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as error:
        if os.environ.get("KERASTRAIN_TRACEBACK"):
            raise
        print(f"kerastrain {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kerastrain {args.command}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def quiet_native_logs():
    """Discard native writes to file descriptor 2 and absl/TensorFlow logging below ERROR.

    TensorFlow prints its start-up lines before its log level is read (even with
    ``TF_CPP_MIN_LOG_LEVEL=3``), so they are stopped at the file descriptor;
    ``sys.stderr`` is pointed at a copy of the original descriptor, so Python's
    own messages still reach the terminal. Under a test's captured ``sys.stderr``
    only the log levels change.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    loggers = [logging.getLogger(name) for name in ("absl", "tensorflow", "jax")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    redirect = sys.stderr is sys.__stderr__ and _is_file_descriptor_2(sys.stderr)
    saved_stream = sys.stderr
    if redirect:
        saved_stream.flush()
        saved_fd = os.dup(2)
        sys.stderr = os.fdopen(os.dup(saved_fd), "w", buffering=1,
                               encoding=saved_stream.encoding, errors="backslashreplace")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if redirect:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sys.stderr.close()
            sys.stderr = saved_stream


def _is_file_descriptor_2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


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
        sub.add_argument("--verbose", action="store_true",
                         help="show TensorFlow/absl start-up and log lines on stderr")
    return parser


if __name__ == "__main__":
    sys.exit(main())
