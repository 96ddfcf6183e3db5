"""Data for `kerastrain tune`: bundled scikit-learn sets, .npz, .csv, or Python.

Splits are stratified for classification and seeded, so the chief and every
worker of a parallel search (and a resumed search) see identical splits.
"""

from __future__ import annotations

import dataclasses
import importlib
import os

import numpy as np

from kerastrain import _validation

BUNDLED = ("digits", "iris", "wine", "breast_cancer")


@dataclasses.dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None  # None for regression

    @property
    def x_fit(self):
        """Training + validation inputs (for cross-validation and the final retrain)."""
        return np.concatenate([self.x_train, self.x_val])

    @property
    def y_fit(self):
        return np.concatenate([self.y_train, self.y_val])


def import_object(spec, name):
    """The object ``module:attribute`` names; a clear error if it does not exist."""
    module_name, sep, attribute = str(spec).partition(":")
    if not sep or not module_name or not attribute:
        raise _validation.argument_error(name, "look like 'module:function'", spec)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _validation.argument_error(
            name, "name an importable module", spec,
            f"Importing {module_name!r} failed: {error}. The current directory and "
            "PYTHONPATH are searched.") from None
    if not hasattr(module, attribute):
        raise _validation.argument_error(
            name, f"name an attribute of module {module_name!r}", spec)
    return getattr(module, attribute)


def _read_source(config):
    source, target = config["source"], config["target"]
    if source.startswith("sklearn:"):
        dataset = source.partition(":")[2]
        _validation.check_one_of("data.source", dataset, BUNDLED)
        import sklearn.datasets

        x, y = getattr(sklearn.datasets, f"load_{dataset}")(return_X_y=True)
        return (x, y), None
    if source.endswith(".npz") or source.endswith(".csv"):
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"Data file not found: {source!r}. Received: data.source={source!r}. "
                "Give an existing .npz or .csv path (relative to the current directory).")
        if source.endswith(".npz"):
            return _read_npz(source)
        return _read_csv(source, target), None
    if ":" in source:
        result = import_object(source, "data.source")()
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], tuple):
            return tuple(result[0]), tuple(result[1])
        if isinstance(result, tuple) and len(result) == 2:
            return tuple(result), None
        raise _validation.type_error(
            "data.source", "a function returning (x, y) or ((x_train, y_train), (x_test, y_test))",
            result)
    raise _validation.argument_error(
        "data.source", "be 'sklearn:NAME', a .npz or .csv path, or 'module:function'", source)


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if {"x_train", "y_train"} <= keys:
            train = (archive["x_train"], archive["y_train"])
            test = (archive["x_test"], archive["y_test"]) if {"x_test", "y_test"} <= keys else None
            return train, test
        if {"x", "y"} <= keys:
            return (archive["x"], archive["y"]), None
    raise _validation.argument_error(
        "data.source", "be a .npz with arrays x, y or x_train, y_train", path,
        f"It holds {sorted(keys)}.")


def _read_csv(path, target):
    import csv

    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    if len(rows) < 2:
        raise _validation.argument_error("data.source", "be a CSV with a header and rows", path)
    header, body = rows[0], rows[1:]
    if target and target not in header:
        raise _validation.argument_error("data.target", f"be a column of {path!r}", target,
                                         f"Columns: {', '.join(header)}.")
    column = header.index(target) if target else len(header) - 1
    try:
        table = np.asarray(body, dtype=np.float64)
    except ValueError:
        raise _validation.argument_error(
            "data.source", "be a CSV of numbers (after the header)", path) from None
    y = table[:, column]
    x = np.delete(table, column, axis=1)
    if np.all(y == np.round(y)):
        y = y.astype(np.int64)
    return x, y


def load_splits(config, seed):
    """Train / validation / test `Splits` from the ``[data]`` section."""
    from sklearn.model_selection import train_test_split

    (x, y), test = _read_source(config)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if len(x) != len(y):
        raise _validation.argument_error(
            "data.source", "give as many targets as examples", f"{len(x)} x, {len(y)} y")
    task = config["task"]
    if task == "auto":
        task = "classification" if np.issubdtype(y.dtype, np.integer) else "regression"
    if task == "classification":
        if not np.all(np.asarray(y) == np.round(y)):
            raise _validation.argument_error(
                "data.task", "be 'regression' for non-integer targets", task)
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32)
    stratify = y if task == "classification" else None
    if test is None:
        x, x_test, y, y_test = train_test_split(
            x, y, test_size=config["test_fraction"], random_state=seed, stratify=stratify)
        stratify = y if task == "classification" else None
    else:
        x_test = np.asarray(test[0], dtype=np.float32)
        y_test = np.asarray(test[1]).astype(y.dtype)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=config["validation_fraction"], random_state=seed, stratify=stratify)
    if config["standardize"]:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0  # constant features stay constant (z = 0), they do not blow up
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    num_classes = int(max(y.max(), y_test.max()) + 1) if task == "classification" else None
    return Splits(x_train.astype(np.float32), y_train, x_val.astype(np.float32), y_val,
                  x_test.astype(np.float32), y_test, num_classes)
