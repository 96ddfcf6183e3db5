"""`kerastrain diagnose`: run the diagnostics on a model and data from the command line.

The model is ``--model module:function`` (a function returning a compiled
Keras model; the current directory is importable) or a saved ``.keras`` file;
the data ``--data`` is a ``.npz`` file with arrays ``x`` and ``y``, a ``.csv``
file (the last column is the label), or ``module:function`` returning
``(x, y)``. With neither, a built-in example runs: scikit-learn's bundled
digits (8x8 images, 10 classes, no download) and a small MLP, on which every
default check passes. Exit status: 0 when every check passed, 1 when one
failed (its report says FAILED / PROBLEMS FOUND), 2 for a usage error.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np

from kerastrain import _compat, _validation

# check -> what it runs and prints (the --help epilog)
CHECK_HELP = {
    "gradient": "gradient_check: backprop vs finite differences, per layer (pass/FAIL)",
    "sanity": "sanity_check: initial loss ~ ln C, overfit a tiny subset, dead/saturated "
              "units (pass/PROBLEMS FOUND)",
    "hessian": "critical_point: minimum / maximum / saddle / not critical from the Hessian's "
               "extreme eigenvalues, with positive / negative / near-zero counts",
    "eigenvalues": "hessian_eigenvalues: the 3 largest Hessian eigenvalues (Lanczos)",
    "trace": "hessian_trace: Hutchinson's estimate of the Hessian trace",
    "density": "hessian_density: Hessian eigenvalue density (SLQ) and sign counts",
    "landscape": "loss_landscape_1d: loss along a filter-normalized random direction",
    "landscape2d": "loss_landscape_2d: loss on a filter-normalized random plane",
    "sharpness": "sharpness: worst loss increase in a small box around the weights",
}
CHECKS = tuple(CHECK_HELP)
DEFAULT_CHECKS = "gradient,sanity,hessian"
SAVED_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def default_data():
    """scikit-learn's bundled digits: pixels scaled to [0, 1], integer labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("The built-in example needs scikit-learn: "
                          "`pip install scikit-learn`.") from error
    digits = load_digits()
    return (digits.data / 16.0).astype("float32"), digits.target.astype("int64")


def default_model():
    """A 64-32-10 ReLU MLP for the digits, compiled with Adam(3e-3) and cross-entropy.

    At 3e-3 (not Keras's 1e-3) the sanity check's 20-example overfitting test
    reaches its target (1% of the initial loss) in about 160 of its 500 steps;
    at 1e-3 it needs about 500 and fails on some seeds.
    """
    import keras

    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _load_callable(spec, name):
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise _validation.argument_error(
            name, "be 'module:function'", spec,
            "For example `--model my_models:build` with build() in my_models.py.",
        )
    module_name, function_name = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or module_name.split(".")[0] != error.name.split(".")[0]:
            raise  # the module exists, but something it imports is missing
        raise _validation.argument_error(
            name, "name an importable module", spec,
            f"No module named {error.name!r} in the current directory or on "
            "PYTHONPATH; a saved model is given as a path ending in .keras.") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise _validation.argument_error(
            name, f"name a function of module {module_name!r}", spec,
        )
    return function


def _load_csv(path):
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError:
        try:  # a header line
            table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)
        except ValueError as error:
            raise _validation.argument_error(
                "--data", "be a CSV of numbers (an optional header line, then rows whose "
                "last column is the label)", path, f"{path}: {error}") from None
    if table.shape[1] < 2:
        raise _validation.argument_error(
            "--data", "be a CSV with feature columns and a last label column", path,
        )
    x, y = table[:, :-1].astype("float32"), table[:, -1]
    if np.all(y == np.round(y)):
        y = y.astype("int64")
    return x, y


def load_data(spec):
    """``(x, y)`` from a ``.npz`` / ``.csv`` path or ``module:function``; default digits."""
    if spec is None:
        return default_data()
    if spec.endswith(".npz"):
        if not os.path.exists(spec):
            raise FileNotFoundError(f"Argument `--data`: no such file: {spec!r}")
        return _load_npz(spec)
    if spec.endswith(".csv"):
        if not os.path.exists(spec):
            raise FileNotFoundError(f"Argument `--data`: no such file: {spec!r}")
        return _load_csv(spec)
    result = _load_callable(spec, "--data")()
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise _validation.argument_error("--data", "return a tuple (x, y)", spec)
    return np.asarray(result[0]), np.asarray(result[1])


def _load_npz(path):
    hint = "Save numeric arrays with `np.savez(path, x=x, y=y)`."
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise _validation.argument_error(
                    "--data", "be an .npz file with arrays 'x' and 'y'", path,
                    f"It lacks {sorted(missing)}; save with `np.savez(path, x=x, y=y)`.",
                )
            return archive["x"], archive["y"]
    except ValueError as error:
        if "pickle" not in str(error) and "Object arrays" not in str(error):
            raise
        raise _validation.argument_error(
            "--data", "be an .npz file of numeric arrays", path,
            f"{path} contains pickled (object) data, which is never loaded (it could run "
            f"code). {hint}") from None
    except (OSError, EOFError) as error:  # truncated or not a zip archive
        raise _validation.argument_error(
            "--data", "be a readable .npz file", path, f"{path}: {error}. {hint}") from None


def _load_saved_model(path):
    import keras

    import kerastrain

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Argument `--model`: no such file: {path!r}")
    for subpackage in kerastrain.__all__[1:]:  # registers kerastrain's classes for loading
        importlib.import_module(f"kerastrain.{subpackage}")
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise _validation.argument_error(
            "--model", "be a model file Keras can load", path,
            f"{path}: {type(error).__name__}: {error}") from None
    if getattr(model, "loss", None) is None:
        raise _validation.argument_error(
            "--model", "be a compiled model (saved after model.compile(...))", path,
            "Or give `module:function` returning a compiled model.")
    return model


def load_model(spec):
    """The compiled model from ``module:function`` or a saved ``.keras`` file; default the
    digits MLP."""
    if spec is None:
        return default_model()
    if str(spec).lower().endswith(SAVED_MODEL_SUFFIXES):
        return _load_saved_model(spec)
    return _load_callable(spec, "--model")()


def add_common_arguments(parser):
    parser.add_argument("--model", metavar="MODULE:FUNCTION|PATH",
                        help="function returning a compiled Keras model, or a saved .keras "
                             "file (default: a small MLP for the digits)")
    parser.add_argument("--data", metavar="PATH|MODULE:FUNCTION",
                        help=".npz with x and y, .csv (last column = label), or "
                             "module:function returning (x, y) (default: sklearn digits)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def prepare(args):
    """Seeded model and data (the model is built on a first batch)."""
    _compat.set_random_seed(args.seed)
    x, y = load_data(args.data)
    model = load_model(args.model)
    if not model.built:
        model(x[:1])
    return model, x, y


def add_arguments(parser):
    """Options of `kerastrain diagnose`."""
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "checks:\n" + "\n".join(
        f"  {name:<12s} {text}" for name, text in CHECK_HELP.items()) + (
        "\n\nexit status: 0 every check passed, 1 a check failed (FAILED / PROBLEMS FOUND), "
        "2 usage error")
    add_common_arguments(parser)
    parser.add_argument("--checks", default=DEFAULT_CHECKS,
                        help=f"comma-separated, from {', '.join(CHECKS)} "
                             f"(default {DEFAULT_CHECKS})")
    parser.add_argument("--samples", type=int, default=256,
                        help="examples used for the loss-surface analyses (default 256)")
    parser.add_argument("--epochs", type=int, default=0,
                        help="train this many epochs after the sanity check and before the "
                             "other checks (default 0: analyse the model as loaded)")
    parser.add_argument("--output", metavar="DIR",
                        help="write diagnose-<check>.png per check into this directory "
                             "(created; checked before the checks run)")


def _run_check(name, model, x, y, seed):
    from kerastrain import diagnostics

    if name == "gradient":
        return diagnostics.gradient_check(model, x[:32], y[:32], seed=seed)
    if name == "sanity":
        return diagnostics.sanity_check(model, x, y, seed=seed)
    if name == "hessian":
        return diagnostics.critical_point(model, x, y, seed=seed)
    if name == "eigenvalues":
        return diagnostics.hessian_eigenvalues(model, x, y, k=3, seed=seed)
    if name == "trace":
        return diagnostics.hessian_trace(model, x, y, seed=seed)
    if name == "density":
        return diagnostics.hessian_density(model, x, y, seed=seed)
    if name == "landscape":
        return diagnostics.loss_landscape_1d(model, x, y, seed=seed)
    if name == "landscape2d":
        return diagnostics.loss_landscape_2d(model, x, y, num_points=11, seed=seed)
    return diagnostics.sharpness(model, x, y, seed=seed)


def check_output_directory(path):
    """Create ``--output`` DIR (if needed) and check it is writable, before any long work."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise _validation.argument_error("--output", "be a directory", path,
                                         "A file of that name exists.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise _validation.argument_error(
            "--output", "be a directory that can be created", path, str(error)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"Argument `--output`: cannot write into {path!r}.")


def check_output_file(path):
    """Check ``--output`` FILE can be written as an image, before any long work."""
    import matplotlib.figure

    formats = matplotlib.figure.Figure().canvas.get_supported_filetypes()
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in formats:
        raise _validation.argument_error(
            "--output", "end in an image format", path,
            f"Supported: {', '.join('.' + name for name in sorted(formats))}.")
    if os.path.isdir(path):
        raise _validation.argument_error("--output", "be a file path, not a directory", path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"Argument `--output`: no such directory: {parent!r}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"Argument `--output`: cannot write into {parent!r}.")


def run(args):
    """Run the selected checks, print each report, write PNGs to ``--output``.

    Returns 0 when every check with a verdict passed, 1 otherwise.
    """
    checks = [check.strip() for check in args.checks.split(",") if check.strip()]
    for check in checks:
        _validation.check_one_of("--checks", check, CHECKS)
    _validation.check_integer("--samples", args.samples, minimum=1)
    _validation.check_integer("--epochs", args.epochs, minimum=0)
    if args.output:
        check_output_directory(args.output)
    model, x, y = prepare(args)
    subset = np.random.default_rng(args.seed).permutation(len(x))[: args.samples]
    failed = []
    checks.sort(key=lambda check: check != "sanity")  # the sanity check is for the start
    for index, check in enumerate(checks):
        if args.epochs and index == int("sanity" in checks):
            model.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0)
            print(f"trained {args.epochs} epochs\n")
        result = _run_check(check, model, x[subset], y[subset], args.seed)
        print(result)
        print()
        if getattr(result, "passed", True) is False:
            failed.append(check)
        if args.output:
            path = os.path.join(args.output, f"diagnose-{check}.png")
            result.plot().savefig(path, dpi=100)
            print(f"wrote {path}")
    if failed:
        print(f"kerastrain diagnose: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
