"""Shared plumbing of the chapter examples: arguments, data, figures.

Not part of the toolkit: each example imports it as a sibling module
(``python examples/NAME.py`` puts ``examples/`` on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def parse_args(name, description, log_dir=False):
    """``--quick``, ``--figure``, ``--seed`` and (optionally) ``--log-dir``."""
    parser = argparse.ArgumentParser(prog=f"examples/{name}.py", description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, a few seconds (for CI); the figure is not meaningful")
    parser.add_argument("--figure", default=None,
                        help=f"PNG to write (default: examples/figures/{name}.png; with --quick "
                             "a new temporary directory, so the committed figure stays)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    if log_dir:
        parser.add_argument("--log-dir", default=None,
                            help="TensorBoard directory (default: a new temporary directory)")
    args = parser.parse_args()
    if args.figure is None:
        args.figure = quick_or_committed_figure(name, args.quick)
    if log_dir and args.log_dir is None:
        args.log_dir = tempfile.mkdtemp(prefix=f"kerastrain-{name}-")
    import keras

    keras.utils.set_random_seed(args.seed)
    return args


def quick_or_committed_figure(name, quick, filename=None):
    """The committed ``examples/figures/<name>.png``, or a temporary path for ``--quick``."""
    filename = filename or f"{name}.png"
    if quick:
        return os.path.join(tempfile.mkdtemp(prefix=f"kerastrain-{name}-"), filename)
    return os.path.join(FIGURES, filename)


def digits(seed=0, standardize=True, train_size=None):
    """scikit-learn's bundled 8x8 digits: ``(x_train, y_train), (x_val, y_val)``.

    Pixels are 0..16; ``standardize`` divides by 16 (the raw scale is kept for
    the preprocessing experiment). 75 % / 25 % split, stratified.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.data.astype("float32")
    if standardize:
        x = x / 16.0
    y = data.target.astype("int32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y)
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    return (np.ascontiguousarray(x_train), y_train), (np.ascontiguousarray(x_val), y_val)


def pyplot():
    """matplotlib's pyplot on the headless Agg backend."""
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("The examples need matplotlib: pip install matplotlib") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path, dpi=80):
    """Write ``figure`` as a small PNG and say where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    print(f"wrote {path}")


def mlp(input_dim, units=(64,), outputs=10, activation="relu", name=None, **dense_kwargs):
    """A small classifier: Dense layers then a softmax output."""
    import keras

    inputs = keras.Input(shape=(input_dim,))
    h = inputs
    for width in units:
        h = keras.layers.Dense(width, activation=activation, **dense_kwargs)(h)
    outputs = keras.layers.Dense(outputs, activation="softmax")(h)
    return keras.Model(inputs, outputs, name=name)
