"""`kerastrain tune`, `kerastrain worker` and `kerastrain results`.

``kerastrain tune`` with no arguments runs the embedded default: the
chapter's MLP search space on scikit-learn's bundled digits, random search,
a few minutes on a laptop CPU. Give a TOML/YAML file (``--print-config`` is a
starting point) or ``--set SECTION.KEY=VALUE`` to change anything.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--vectorize", metavar="K|auto|off",
                        help="search.vectorize: train up to K trials as one compiled program "
                        "(JAX or TensorFlow backend), 'auto' (default) or 'off' (one trial at a "
                        "time)")
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
                 ("search", "vectorize"): _vectorize_option(args.vectorize),
                 ("output", "overwrite"): True if args.overwrite else None}
    for (section, key), value in shortcuts.items():
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def _vectorize_option(text):
    """``--vectorize``: an integer K, ``auto``, or ``off`` / ``false`` (as the config's)."""
    if text is None:
        return None
    text = text.strip().lower()
    if text in ("off", "false", "no"):
        return False
    return int(text) if text.lstrip("-").isdigit() else text


def run(args):
    """`kerastrain tune`."""
    if args.print_config:
        print(_config.to_toml(_config.default_config()))
        return 0
    config = _config.load_config(args.config, _overrides(args))
    current_directory_importable()
    return _guard("tune", lambda: _tune(config, args.quiet))


def current_directory_importable():
    """Let ``module:function`` specs (model.build, data.source) name a module in the
    current directory, as `lr-find` and `diagnose` do (and ``python -m`` would)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


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
    config = _driver.resolve_budget(config)
    progress = None if quiet else _Progress(console, config["search"]["max_trials"])
    with progress or _nothing():
        tuner, summary = _driver.run_config(config, progress)
    _print_results(console, tuner.project_dir)
    _print_summary(console, summary)
    _print_locations(console, tuner.project_dir, summary, config["output"]["tensorboard"])
    return 0


def _print_locations(console, project_dir, summary, tensorboard):
    """Where the results, the best model and the TensorBoard runs are."""
    import shlex

    from kerastrain.tuning import _results

    console.out(f"results: {os.path.join(project_dir, _results.RESULTS_FILE)}", highlight=False)
    if summary is not None and summary.get("model"):
        console.out(f"best model: {summary['model']}", highlight=False)
    elif summary is not None:
        console.out(f"best trial: {os.path.join(project_dir, 'trial_' + summary['trial_id'])} "
                    "(output.retrain = false: no model retrained)", highlight=False)
    if tensorboard:
        logdir = shlex.quote(os.path.join(project_dir, "tensorboard"))
        console.out(f"tensorboard: tensorboard --logdir {logdir}", highlight=False)


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
        self.group_labels = {}  # vectorized groups' bars -> their labels

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

    def end_trial(self, trial_id, score, pruned, reason=None):
        if self.trial is not None:
            if score is None:  # failed: the bar stays where the trial stopped
                self.bar.update(self.trial, description=f"trial {trial_id} failed: {reason}")
            elif pruned:  # the bar stays at the epochs the trial ran
                self.bar.update(self.trial,
                                description=f"trial {trial_id} score={score:.4f} (pruned)")
            else:
                self.bar.update(self.trial, completed=self.bar.tasks[self.trial].total,
                                description=f"trial {trial_id} score={score:.4f}")
        self.bar.advance(self.search)

    def start_group(self, trial_ids, epochs):
        """Vectorized trials: one bar for a group whose members advance together.

        Returns the bar's handle for `group_epoch` (two groups can run side by side)."""
        self.trial = None  # members end through end_trial, without a bar of their own
        label = f"trials {trial_ids[0]}-{trial_ids[-1]} ({len(trial_ids)} as one)"
        group = self.bar.add_task(label, total=epochs)
        self.group_labels[group] = label
        return group

    def group_epoch(self, objective, best, pruned, failed, group):
        """After each epoch of ``group`` (`start_group`'s handle): best so far, members
        pruned or failed."""
        shown = f" best {objective}={best:.4f}" if best is not None else ""
        shown += f", {pruned} pruned" if pruned else ""
        shown += f", {failed} failed" if failed else ""
        self.bar.update(group, advance=1, description=self.group_labels[group] + shown)

    def trial_done(self, trial_id, score):
        self.bar.advance(self.search)
        shown = "failed" if score is None else f"score={score:.4f}"
        self.bar.console.print(f"trial {trial_id} {shown}", markup=False, highlight=False)


def _print_results(console, project_dir, top=10):
    from kerastrain.tuning import _results

    rows, meta = _results.read_results(os.path.join(project_dir, _results.RESULTS_FILE))
    title = (f"trials: {len(rows)}, best first ({meta.get('objective', 'score')}, "
             f"{meta.get('direction', 'max')}): {project_dir}")
    for line in results_lines(rows[:top], title, console.width):
        console.out(line, highlight=False)
    return rows


def results_lines(rows, title, width=80):
    """The results table as plain lines no wider than ``width`` (a terminal or a log).

    One line of fixed columns per trial, then its hyperparameters (and a failed
    trial's reason) indented below, wrapped at ``width``.
    """
    import textwrap

    from kerastrain.tuning import _results

    width = max(40, int(width))
    columns = [("trial", "trial_id"), ("status", "status"), ("score", "score")]
    if any(row.get("score_std") is not None for row in rows):
        columns.append(("std", "score_std"))
    columns += [("epochs", "epochs"), ("seconds", "seconds")]
    if len({row.get("worker") for row in rows} - {None}) > 1:
        columns.append(("worker", "worker"))
    cells = [[_cell(row, key) for _, key in columns] for row in rows]
    widths = [max([len(header)] + [len(line[i]) for line in cells])
              for i, (header, _) in enumerate(columns)]
    lines = textwrap.wrap(title, width) + [
        "  ".join(h.ljust(w) for (h, _), w in zip(columns, widths)).rstrip()]
    wrap = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="      ",
                                break_long_words=True, break_on_hyphens=False)
    for row, line in zip(rows, cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()[:width])
        if row.get("reason"):
            lines.extend(wrap.wrap(f"reason: {row['reason']}"))
        values = ", ".join(f"{key}={_format(value)}" for key, value in row.items()
                           if key not in _results.FIXED_COLUMNS and value is not None)
        lines.extend(wrap.wrap(values))
    return lines


def _cell(row, key):
    value = row.get(key)
    if key == "epochs" and value is not None and row.get("pruned"):
        return f"{value} pruned"
    if key == "seconds" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    return _format(value)


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_summary(console, summary):
    if summary is None:
        console.print("no completed trial")
        return
    console.out(f"best hyperparameters (trial {summary['trial_id']}, score "
                f"{summary['score']:.4f} after {summary['epochs']} epochs):", highlight=False)
    for key, value in summary["hyperparameters"].items():
        console.out(f"  {key} = {_format(value)}", highlight=False)
    if summary.get("test"):
        console.print(f"retrained on train + validation data for {summary['epochs']} epochs")
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
    current_directory_importable()
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
    import textwrap

    from rich.console import Console

    from kerastrain.tuning import _results

    console = Console()
    for path in _results.find_results(args.directory):
        rows = _print_results(console, os.path.dirname(path), args.top)
        completed = [row for row in rows if row.get("status") == "COMPLETED"]
        if completed:
            best = completed[0]
            fixed = set(_results.FIXED_COLUMNS)
            text = "best hyperparameters: " + ", ".join(
                f"{k}={_format(v)}" for k, v in best.items() if k not in fixed and v is not None)
            for line in textwrap.wrap(text, max(40, console.width), subsequent_indent="  "):
                console.out(line, highlight=False)
    return 0
