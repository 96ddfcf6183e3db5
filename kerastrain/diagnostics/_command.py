"""`kerastrain diagnose`: run the diagnostics on a model and data from the command line.

The model is ``--model module:function`` (a function returning a compiled
Keras model); the data ``--data`` is a ``.npz`` file with arrays ``x`` and
``y``, a ``.csv`` file (the last column is the label), or ``module:function``
returning ``(x, y)``. With neither, a built-in example runs: scikit-learn's
bundled digits (8x8 images, 10 classes, no download) and a small MLP.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np

from kerastrain import _validation

CHECKS = ("gradient", "sanity", "hessian", "eigenvalues", "trace", "density", "landscape",
          "landscape2d", "sharpness")
DEFAULT_CHECKS = "gradient,sanity,hessian"


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
    """A 64-32-10 ReLU MLP for the digits, compiled with Adam and cross-entropy."""
    import keras

    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
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
    module = importlib.import_module(module_name)
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
        table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)
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
        with np.load(spec) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise _validation.argument_error(
                    "--data", "be an .npz file with arrays 'x' and 'y'", spec,
                    f"It lacks {sorted(missing)}; save with `np.savez(path, x=x, y=y)`.",
                )
            return archive["x"], archive["y"]
    if spec.endswith(".csv"):
        if not os.path.exists(spec):
            raise FileNotFoundError(f"Argument `--data`: no such file: {spec!r}")
        return _load_csv(spec)
    result = _load_callable(spec, "--data")()
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise _validation.argument_error("--data", "return a tuple (x, y)", spec)
    return np.asarray(result[0]), np.asarray(result[1])


def load_model(spec):
    """The compiled model from ``module:function``; default the digits MLP."""
    if spec is None:
        return default_model()
    return _load_callable(spec, "--model")()


def add_common_arguments(parser):
    parser.add_argument("--model", metavar="MODULE:FUNCTION",
                        help="function returning a compiled Keras model "
                             "(default: a small MLP for the digits)")
    parser.add_argument("--data", metavar="PATH|MODULE:FUNCTION",
                        help=".npz with x and y, .csv (last column = label), or "
                             "module:function returning (x, y) (default: sklearn digits)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def prepare(args):
    """Seeded model and data (the model is built on a first batch)."""
    import keras

    keras.utils.set_random_seed(args.seed)
    x, y = load_data(args.data)
    model = load_model(args.model)
    if not model.built:
        model(x[:1])
    return model, x, y


def add_arguments(parser):
    """Options of `kerastrain diagnose`."""
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
                        help="write one PNG per check into this directory")


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


def run(args):
    """Run the selected checks, print each report, write PNGs to ``--output``."""
    checks = [check.strip() for check in args.checks.split(",") if check.strip()]
    for check in checks:
        _validation.check_one_of("--checks", check, CHECKS)
    _validation.check_integer("--samples", args.samples, minimum=1)
    _validation.check_integer("--epochs", args.epochs, minimum=0)
    model, x, y = prepare(args)
    subset = np.random.default_rng(args.seed).permutation(len(x))[: args.samples]
    if args.output:
        os.makedirs(args.output, exist_ok=True)
    checks.sort(key=lambda check: check != "sanity")  # the sanity check is for the start
    for index, check in enumerate(checks):
        if args.epochs and index == int("sanity" in checks):
            model.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0)
            print(f"trained {args.epochs} epochs\n")
        result = _run_check(check, model, x[subset], y[subset], args.seed)
        print(result)
        print()
        if args.output:
            path = os.path.join(args.output, f"diagnose-{check}.png")
            result.plot().savefig(path, dpi=100)
            print(f"wrote {path}")
    return 0
