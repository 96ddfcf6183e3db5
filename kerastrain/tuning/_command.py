"""`kerastrain tune`, `kerastrain worker` and `kerastrain results`.

``kerastrain tune`` with no arguments runs the embedded default: the
chapter's MLP search space on scikit-learn's bundled digits, random search,
a few minutes on a laptop CPU. Give a TOML/YAML file (``--print-config`` is a
starting point) or ``--set SECTION.KEY=VALUE`` to change anything.
"""

from __future__ import annotations

import argparse
import sys

from kerastrain.tuning import _config

_ERRORS = ("ChiefUnreachableError", "WorkerFailedError")


def add_arguments(parser):
    """Options of `kerastrain tune` (the config fields are listed in the epilog)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Hyperparameter search with KerasTuner: the chapter's MLP space on bundled digits "
        "when run with no arguments; re-run on the same directory to resume.")
    parser.epilog = _config.help_text()
    parser.add_argument("config", nargs="?", help="TOML (.toml) or YAML (.yaml/.yml) file")
    parser.add_argument("--print-config", action="store_true",
                        help="print the default config (TOML) and exit")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one field (TOML value), e.g. --set search.max_trials=3")
    parser.add_argument("--directory", help="output.directory")
    parser.add_argument("--max-trials", type=int, help="search.max_trials")
    parser.add_argument("--workers", type=int, help="parallel.workers")
    parser.add_argument("--chief", metavar="HOST:PORT",
                        help="serve the chief oracle here for `kerastrain worker` elsewhere")
    parser.add_argument("--overwrite", action="store_true", help="output.overwrite = true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _overrides(args):
    overrides = {}
    for text in args.set:
        for section, values in _config.parse_assignment(text).items():
            overrides.setdefault(section, {}).update(values)
    shortcuts = {("output", "directory"): args.directory,
                 ("search", "max_trials"): args.max_trials,
                 ("parallel", "workers"): args.workers, ("parallel", "chief"): args.chief,
                 ("output", "overwrite"): True if args.overwrite else None}
    for (section, key), value in shortcuts.items():
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def run(args):
    """`kerastrain tune`."""
    if args.print_config:
        print(_config.to_toml(_config.default_config()))
        return 0
    config = _config.load_config(args.config, _overrides(args))
    return _guard("tune", lambda: _tune(config, args.quiet))


def _guard(command, function):
    try:
        return function()
    except RuntimeError as error:
        if type(error).__name__ not in _ERRORS:
            raise
        print(f"kerastrain {command}: error: {error}", file=sys.stderr)
        return 2


def _tune(config, quiet):
    from rich.console import Console

    from kerastrain.tuning import _driver

    console = Console()
    progress = None if quiet else _Progress(console, config["search"]["max_trials"])
    with progress or _nothing():
        tuner, summary = _driver.run_config(config, progress)
    _print_results(console, tuner.project_dir)
    _print_summary(console, summary)
    return 0


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Progress:
    """A rich progress bar for the search and one per running trial."""

    def __init__(self, console, max_trials):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.search = self.bar.add_task("search (trials)", total=max_trials)
        self.trial = None

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()
        return False

    def start_trial(self, trial_id, total):
        self.label = f"trial {trial_id}"
        self.trial = self.bar.add_task(self.label, total=total)

    def advance(self, objective, value):
        if self.trial is not None:
            shown = "" if value is None else f" {objective}={value:.4f}"
            self.bar.update(self.trial, advance=1, description=self.label + shown)

    def end_trial(self, trial_id, score, pruned):
        if self.trial is not None:
            note = " (pruned)" if pruned else ""
            self.bar.update(self.trial, completed=self.bar.tasks[self.trial].total,
                            description=f"trial {trial_id} score={score:.4f}{note}")
        self.bar.advance(self.search)

    def trial_done(self, trial_id, score):
        self.bar.advance(self.search)
        shown = "failed" if score is None else f"score={score:.4f}"
        self.bar.console.log(f"trial {trial_id} {shown}")


def _print_results(console, project_dir, top=10):
    import os

    from rich.table import Table

    from kerastrain.tuning import _results

    rows, meta = _results.read_results(os.path.join(project_dir, _results.RESULTS_FILE))
    title = (f"trials: {len(rows)}, best first ({meta.get('objective', 'score')}, "
             f"{meta.get('direction', 'max')}): {project_dir}")
    table = Table(title=title)
    fixed = [c for c in _results.FIXED_COLUMNS if any(row.get(c) is not None for row in rows)]
    for column in fixed + ["hyperparameters"]:
        table.add_column(column, overflow="fold")
    for row in rows[:top]:
        hyperparameters = ", ".join(f"{key}={_format(value)}" for key, value in row.items()
                                    if key not in _results.FIXED_COLUMNS and value is not None)
        table.add_row(*(_format(row.get(column)) for column in fixed), hyperparameters)
    console.print(table)
    return rows


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_summary(console, summary):
    from rich.table import Table

    if summary is None:
        console.print("no completed trial")
        return
    table = Table(title=f"best hyperparameters (trial {summary['trial_id']}, "
                        f"score {summary['score']:.4f})", show_header=False)
    for key, value in summary["hyperparameters"].items():
        table.add_row(key, _format(value))
    console.print(table)
    for name, value in summary.get("test", {}).items():
        console.print(f"test {name}: {value:.4f}")


def add_worker_arguments(parser):
    parser.add_argument("config", nargs="?", help="the same config file the chief runs")
    parser.add_argument("--chief", required=True, metavar="HOST:PORT",
                        help="address of the chief started with `kerastrain tune --chief`")
    parser.add_argument("--tuner-id", help="a unique worker name (default: host and pid)")
    parser.add_argument("--connect-timeout", type=float,
                        help="seconds to wait for the chief (parallel.connect_timeout)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")


def run_worker(args):
    overrides = {}
    for text in args.set:
        for section, values in _config.parse_assignment(text).items():
            overrides.setdefault(section, {}).update(values)
    config = _config.load_config(args.config, overrides)
    _config.parse_address(args.chief, "chief")
    if args.connect_timeout is not None:
        config = _config.merge({"parallel": {"connect_timeout": args.connect_timeout}}, config)

    def work():
        from kerastrain.tuning import _driver

        _driver.run_worker(config, args.chief, args.tuner_id)
        return 0

    return _guard("worker", work)


def add_results_arguments(parser):
    parser.add_argument("directory", help="output.directory (or one project in it)")
    parser.add_argument("--top", type=int, default=20, help="rows shown (default 20)")


def run_results(args):
    import os

    from rich.console import Console

    from kerastrain.tuning import _results

    console = Console()
    for path in _results.find_results(args.directory):
        rows = _print_results(console, os.path.dirname(path), args.top)
        completed = [row for row in rows if row.get("status") == "COMPLETED"]
        if completed:
            best = completed[0]
            fixed = set(_results.FIXED_COLUMNS)
            console.print("best hyperparameters: " + ", ".join(
                f"{k}={_format(v)}" for k, v in best.items() if k not in fixed and v is not None))
    return 0
