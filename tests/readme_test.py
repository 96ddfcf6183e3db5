"""The README's Quickstart and its Python code blocks.

The Quickstart has exactly two commands, and CI runs the test command verbatim.
Every ```python block of the README runs, on small data, so none can go stale.

Each block is matched to one entry of ``BLOCKS`` by a snippet of its text: the
data it expects (``CONTEXTS``; the README's blocks continue their section, so
the usual imports are there too), source replacements that shrink budgets
(every ``epochs=N`` becomes ``epochs=2``; others are listed per block), and an
optional check of what the block's comments promise. A block that cannot run
here has a one-line reason instead. A new block without an entry fails
`test_every_block_has_an_entry`: add one.
"""

import os
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [block.strip() for block in blocks]


def test_quickstart_has_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in command for command in commands)
    assert "kerastrain" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = quickstart_commands()[1]
    assert test_command in ci
    # the JAX run reuses the fresh venv that the verbatim command installed
    run_tests = test_command.split("&&")[-1].strip()
    assert f"KERAS_BACKEND=jax {run_tests}" in ci


def test_tox_has_the_backend_environments():
    tox = (ROOT / "tox.ini").read_text()
    for environment in ("py-tensorflow", "py-jax", "py-torch", "lint"):
        assert environment in tox


# --- every ```python block runs ---

def readme_blocks():
    """``[(line number, source)]`` of every ```python block."""
    text = (ROOT / "README.md").read_text()
    return [(text[:match.start()].count("\n") + 2, match.group(1))
            for match in re.finditer(r"```python\n(.*?)```", text, flags=re.S)]


def _regression(rng):
    import keras

    x = rng.normal(size=(64, 8)).astype("float32")
    y = x[:, :1] * 0.5 + 0.1
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return {"x": x, "y": y, "x_train": x, "y_train": y, "x_test": x[:8], "model": model}


def _digits_model(keras):
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


def _digits(rng):
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = rng.random((64, 64)).astype("float32")
    y = rng.integers(0, 10, size=64)
    models = []
    for batch_size in (8, 64):
        model = _digits_model(keras)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        models.append(model)
    model = _digits_model(keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return {"x": x, "y": y, "x_train": x, "y_train": y, "y_train_integers": y,
            "x_test": x[:8], "model": model, "small_batch_model": models[0],
            "large_batch_model": models[1], "matplotlib_figure": plt.figure(figsize=(2, 2))}


def _monitored(rng):
    import kerastrain

    context = _digits(rng)
    context["model"].compile(optimizer=kerastrain.optimizers.Adam(), metrics=["accuracy"],
                             loss="sparse_categorical_crossentropy")
    return context


def _mnist(rng):
    return {"x_train": rng.random((32, 784)).astype("float32"),
            "y_train": rng.integers(0, 10, size=32)}


def _images(rng):
    import keras

    images = rng.random((16, 32, 32, 3)).astype("float32")
    return {"x_train": images, "y_train": rng.integers(0, 10, size=16), "images": images,
            "inputs": keras.Input((64, 64, 3))}


def _vectors500(rng):
    return {"x": rng.normal(size=(32, 500)).astype("float32")}


CONTEXTS = {"regression": _regression, "digits": _digits, "monitored": _monitored,
            "mnist": _mnist,
            "images": _images, "vectors500": _vectors500}

# snippet of the block -> (context, {old: new} source replacements, check) or a reason
BLOCKS = {
    "from kerastrain.optimizers import transforms as T": ("regression", {}, None),
    # the block asserts its one step against numpy itself
    "class SignMomentum(Transform):": ("regression", {}, None),
    "optimizers.RMSprop(0.01, rho=0.99": ("digits", {}, None),
    "optimizers.Adagrad(0.05, reset_interval=1000)": ("regression", {}, None),
    "beta_1 = keras.optimizers.schedules.PolynomialDecay": ("regression", {}, None),
    "optimizers.Lookahead(optimizers.Adam(1e-3))": ("regression", {}, None),
    "optimizers.monitored(keras.optimizers.Lion(1e-4))": ("regression", {}, None),
    "from kerastrain.optimizers import SAM": ("regression", {}, None),
    "from kerastrain.optimizers import HessianFree": ("regression", {}, None),
    "schedules.OneCycle(0.1, total_steps=steps)": ("digits", {}, None),
    "lr = schedules.StepDecay(0.1": ("regression", {}, None),
    "from kerastrain.schedules import Triangular2CyclicalLearningRate": ("regression", {}, None),
    "lr = schedules.SGDR(0.1, first_decay_steps": ("regression", {}, None),
    "three_phase=True": ("digits", {}, None),
    "lr = schedules.Warmup(keras.optimizers.schedules.CosineDecay": ("regression", {}, None),
    "callbacks=[kerastrain.callbacks.ReduceLROnPlateau(": ("regression", {}, None),
    "from kerastrain import initializers": ("mnist", {}, None),
    "variances = initializers.lsuv(model, x_train[:256]": (
        "regression", {}, "assert len(variances) == 2  # both Dense layers"),
    "activity_regularizer=regularizers.L1(1e-5)": ("regression", {}, None),
    "regularizers.SparseCategoricalCrossentropy(from_logits=True,": ("digits", {}, None),
    "zca = layers.ZCAWhitening(epsilon=1e-5)": ("digits", {"center.adapt(images)": "center.adapt(np.zeros((4, 32, 32, 3)))"}, None),
    "layers.WeightNormalization(keras.layers.Conv2D(32, 3": ("images", {}, None),
    "layers.LocalResponseNormalization(2, bias=2.0": ("images", {}, None),
    "layers.Maxout(128), keras.layers.Dense(10)": ("mnist", {}, None),
    "mean, std = layers.mc_predict(model, x_test, samples=30)": ("regression", {}, None),
    "keras.layers.SpatialDropout1D(0.2)": ("regression", {}, None),
    'callbacks=kerastrain.callbacks.monitor("logs/run1"': ("digits", {}, None),
    "logger = kerastrain.callbacks.GradientNormLogger(": ("regression", {}, None),
    "detector = kerastrain.callbacks.DeadReLUDetector(": (
        "digits", {}, "assert detector.dead_units and all('/' in k for k in detector.dead_units)"),
    # the monitoring section's model records gradient statistics (a kerastrain optimizer)
    "kerastrain.callbacks.ActivationHistograms(x[:256]": ("monitored", {}, None),
    "stop = kerastrain.callbacks.EarlyStopping(": ("regression", {}, None),
    "print(diagnostics.gradient_check(model, x[:32], y[:32]))": (
        "digits", {"sanity_check(model, x, y)": "sanity_check(model, x, y, max_steps=5)",
                   "lr_range_test(model, x, y)": "lr_range_test(model, x, y, num_steps=10)",
                   "hessian_density(model, x, y)": "hessian_density(model, x, y, num_runs=1, "
                                                   "num_iterations=10)",
                   "loss_landscape_2d(model, x, y)": "loss_landscape_2d(model, x, y, "
                                                     "num_points=5)",
                   "num_probes=100": "num_probes=10"}, None),
    "from kerastrain.tuning import MLPHyperModel, MedianStoppingPruner": (
        "digits", {"max_trials=20": "max_trials=1", "max_epochs=15": "max_epochs=1",
                   "cv=5,": "cv=2,", "search(tuner, x_train, y_train)":
                   "search(tuner, x_train, y_train, verbose=0)"}, None),
    "def build(hp):                                        # any compiled Keras model": (
        "digits", {"max_trials=32": "max_trials=3", "x_val, y_val": "x[:16], y[:16]",
                   'vectorize="auto")': 'vectorize="auto", directory="tune")'},
        "assert len(tuner.oracle.trials) == 3\n"
        "assert (tuner.vectorize_members > 0) == (keras.config.backend() == 'jax')"),
    "kerastrain.initializers.XavierNormal())\n    for _ in range(10)": ("vectors500", {}, None),
    "model.fit(x, y, batch_size=16, epochs=20)": ("digits", {}, None),
    "result = kerastrain.diagnostics.lr_range_test(model, x, y, start_lr=1e-4": (
        "digits", {"end_lr=10)": "end_lr=10, num_steps=10)"}, None),
    "whiten = kerastrain.layers.ZCAWhitening(epsilon=1e-2)": ("digits", {}, None),
    "kerastrain.layers.MCDropout(0.2), keras.layers.Dense(1)])": (
        "regression", {"x_test": "x_test[:, :1]"}, None),
    'kerastrain.callbacks.monitor("logs/monitoring"': ("monitored", {}, None),
    "kerastrain.diagnostics.hessian_density(model, x, y)       # .signs": (
        "digits", {"hessian_density(model, x, y)": "hessian_density(model, x, y, num_runs=1, "
                                                   "num_iterations=10)",
                   "critical_point(model, x, y)": "critical_point(model, x, y, num_runs=1, "
                                                  "num_iterations=10)",
                   "num_points=25": "num_points=5"}, None),
    'kerastrain.tuning.read_results("tune/digits_cv/results.csv")':
        "reads the output of `python examples/tuning_config.py` (read_results: tests/tuning)",
    "from kerastrain.tensorboard import SummaryWriter": ("digits", {}, None),
}


def entry(source):
    matches = [snippet for snippet in BLOCKS if snippet in source]
    assert len(matches) == 1, f"{len(matches)} entries match this README block:\n{source}"
    return BLOCKS[matches[0]]


def test_every_block_has_an_entry():
    blocks = readme_blocks()
    assert len(blocks) >= 40
    used = [entry(source) for _, source in blocks]
    assert len(used) == len({id(item) for item in used}) == len(BLOCKS), (
        "a BLOCKS entry matches no README block (or two blocks)")


@pytest.mark.slow  # ~40 tiny fits and analyses: two to three minutes per backend
@pytest.mark.parametrize("line, source", readme_blocks(),
                         ids=[f"line{line}" for line, _ in readme_blocks()])
def test_block_runs(line, source, tmp_path, monkeypatch):
    import keras

    import kerastrain
    from kerastrain import (
        diagnostics,
        initializers,
        layers,
        optimizers,
        regularizers,
        schedules,
    )

    spec = entry(source)
    if isinstance(spec, str):
        return  # the reason is in BLOCKS; test_every_block_has_an_entry keeps it honest
    context, replacements, check = spec
    for old, new in replacements.items():
        assert old in source, f"README line {line}: {old!r} is gone; update BLOCKS"
        source = source.replace(old, new)
    source = re.sub(r"\bepochs=\d+", "epochs=2", source)
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    namespace = {"keras": keras, "np": np, "kerastrain": kerastrain, "optimizers": optimizers,
                 "schedules": schedules, "initializers": initializers, "layers": layers,
                 "regularizers": regularizers, "diagnostics": diagnostics, "epochs": 2,
                 "steps_per_epoch": 2, **CONTEXTS[context](np.random.default_rng(0))}
    exec(compile(source, f"README.md:{line}", "exec"), namespace)  # noqa: S102
    if check:
        exec(check, namespace)  # noqa: S102
    assert os.getcwd() == str(tmp_path)
