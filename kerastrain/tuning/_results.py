"""The results table: ``results.csv``, rewritten atomically after every trial.

The table is derived from KerasTuner's own ``trial_*/trial.json`` files (the
source of truth a resumed search reloads) plus kerastrain's per-trial curve
file, so it can always be rebuilt and never double counts a trial. Writes go
to a temporary file in the same directory followed by `os.replace`, so a
reader (or a search killed with SIGKILL) never sees a half-written file.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import tempfile

from kerastrain import _validation

RESULTS_FILE = "results.csv"
META_FILE = "kerastrain.json"
CURVE_FILE = "kerastrain_curve.json"
FIXED_COLUMNS = (
    "trial_id", "status", "score", "score_std", "epochs", "pruned", "seconds", "worker",
    "reason",
)
STATE_FILES = ("oracle.json", "trial_*/trial.json")


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (temporary file + `os.replace`)."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def atomic_write_json(path, value):
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True))


def _load_json(path):
    try:
        with open(path) as stream:
            return json.load(stream)
    except (OSError, json.JSONDecodeError):
        return None


def write_curve(trial_dir, curve, pruned, worker=None, first_epoch=0, active=None,
                failed=False):
    """Record a trial's per-epoch objective (read by the pruner), its worker, the epoch its
    curve starts at (Hyperband continues trials), the hyperparameters its model used and,
    for a trial failed by a non-finite loss, the reason (``failed``)."""
    record = {"curve": [float(v) for v in curve], "pruned": bool(pruned), "worker": worker,
              "first_epoch": int(first_epoch), "failed": failed or False}
    if active is not None:
        record["active"] = sorted(active)
    atomic_write_json(os.path.join(trial_dir, CURVE_FILE), record)


def read_curve(trial_dir):
    """The record `write_curve` wrote in ``trial_dir`` (``{}`` if none)."""
    return _load_json(os.path.join(trial_dir, CURVE_FILE)) or {}


def trained_epochs(record):
    """The epochs a trial's model was trained for when it was scored (None if unknown).

    For Hyperband this is the trial's round (``tuner/epochs``: it continued a
    previous round's model from ``first_epoch``), which can be below ``max_epochs``.
    """
    curve = record.get("curve")
    if not curve:
        return None
    return int(record.get("first_epoch", 0)) + len(curve)


def check_state_files(project_dir):
    """Raise ValueError naming the first damaged (unparsable) KerasTuner state file.

    A power cut can leave ``oracle.json`` or a ``trial.json`` truncated; KerasTuner
    would fail on it with the bare JSON error. Nothing is modified here.
    """
    oracle = os.path.join(project_dir, "oracle.json")
    trials = sorted(glob.glob(os.path.join(project_dir, "trial_*", "trial.json")))
    for path in ([oracle] if os.path.exists(oracle) else []) + trials:
        try:
            with open(path) as stream:
                json.load(stream)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ValueError(
                f"Cannot resume: the search state file {path!r} is damaged (truncated or "
                f"not JSON: {error}). Restore it from a backup, or start afresh with "
                "--overwrite or a new --directory; nothing in the search was changed.") from None


def _last(metrics, name):
    history = metrics.get(name, {}).get("observations", [])
    if not history:
        return None
    value = history[-1]["value"]
    return value[-1] if isinstance(value, list) else value  # the latest report at that step


def trial_rows(project_dir):
    """One ``{column: value}`` row per trial, in trial-id order."""
    rows = []
    for path in sorted(glob.glob(os.path.join(project_dir, "trial_*", "trial.json"))):
        trial = _load_json(path)
        if trial is None:
            continue
        metrics = trial.get("metrics", {}).get("metrics", {})
        record = read_curve(os.path.dirname(path))
        row = {
            "trial_id": trial["trial_id"],
            "status": trial.get("status"),
            "score": trial.get("score"),
            "score_std": _last(metrics, "score_std"),
            "epochs": _integer(_last(metrics, "epochs")),
            "pruned": _integer(_last(metrics, "pruned")),
            "seconds": _last(metrics, "seconds"),
            "worker": record.get("worker"),
            "reason": (record.get("failed") or failure_reason(trial.get("message")))
            if trial.get("status") in ("FAILED", "INVALID") else None,
        }
        active = record.get("active")
        for name, value in trial.get("hyperparameters", {}).get("values", {}).items():
            if not name.startswith("tuner/") and (active is None or name in active):
                row[name] = value
        rows.append(row)
    return rows


def _integer(value):
    return None if value is None else int(value)


def failure_reason(message):
    """The last line of a failed trial's message (KerasTuner stores the traceback)."""
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    name, sep, text = last.partition(": ")
    if sep and name.replace(".", "").replace("_", "").isalnum() and name[:1].isalpha():
        return text  # drop the exception's qualified class name
    return last


def write_results(project_dir):
    """Rebuild ``project_dir/results.csv`` from the trial files; returns its path."""
    rows = trial_rows(project_dir)
    columns = list(FIXED_COLUMNS)
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in columns})
    path = os.path.join(project_dir, RESULTS_FILE)
    atomic_write_text(path, buffer.getvalue())
    return path


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return value


def find_results(directory):
    """The ``results.csv`` files under ``directory`` (a project or output directory)."""
    if not isinstance(directory, (str, os.PathLike)):
        raise _validation.type_error("directory", "a path", directory)
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Argument `directory` must be an existing directory. Received: "
            f"directory={directory!r}. Pass the `output.directory` of a search.")
    direct = os.path.join(directory, RESULTS_FILE)
    if os.path.exists(direct):
        return [direct]
    found = sorted(glob.glob(os.path.join(directory, "*", RESULTS_FILE)))
    if not found:
        raise FileNotFoundError(
            f"Argument `directory` must contain a {RESULTS_FILE} (or a project "
            f"directory with one). Received: directory={directory!r}. "
            "Run `kerastrain tune` with this output directory first.")
    return found


def read_results(path):
    """``(rows, direction)`` of a ``results.csv``; rows sorted best first."""
    with open(path, newline="") as stream:
        rows = [{key: value if key == "trial_id" else _parse(value)
                 for key, value in row.items()}
                for row in csv.DictReader(stream)]
    meta = _load_json(os.path.join(os.path.dirname(path), META_FILE)) or {}
    direction = meta.get("direction", "max")
    return sort_rows(rows, direction), meta


def sort_rows(rows, direction):
    """Completed trials best first (by ``score``), then the others by id."""
    def key(row):
        score = row.get("score")
        if not isinstance(score, (int, float)) or (isinstance(score, float) and math.isnan(score)):
            return (1, 0.0, str(row.get("trial_id")))
        return (0, -score if direction == "max" else score, str(row.get("trial_id")))

    return sorted(rows, key=key)


def _parse(text):
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    return text
