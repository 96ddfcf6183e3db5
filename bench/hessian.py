"""Hessian benchmark: cost of one Hessian-vector product, and Lanczos vs power iteration.

1. Seconds per Hessian-vector product (`kerastrain._backend.make_hvp`,
   compiled) relative to one gradient evaluation (`make_value_and_grad`, the
   baseline), same model, batch and dtype, timed interleaved. Target <= 3x.
2. Hessian-vector products needed for the top eigenvalue to 1e-3 relative
   error: Lanczos with full reorthogonalization (kerastrain) vs power iteration
   with the Rayleigh quotient (PyHessian's method), from the same start
   vectors; the reference is a long Lanczos run. Also reported: the products
   PyHessian's own stopping rule (relative change < 1e-3) uses.

Model: an MLP on scikit-learn's digits, trained for two epochs.
"""

from __future__ import annotations

import numpy as np

from bench._harness import interleaved

TOLERANCE = 1e-3


def _model(hidden, samples):
    import keras
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.data[:samples] / 16.0).astype("float32")
    y = digits.target[:samples]
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(hidden, activation="tanh"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model, x, y


def _timing(model, x, y, repeat):
    import keras

    from kerastrain import _backend

    values = [v.value for v in model.trainable_variables]
    vectors = [keras.ops.ones_like(v) for v in values]
    gradient = _backend.make_value_and_grad(model)
    product = _backend.make_hvp(model)

    def run_gradient():
        keras.ops.convert_to_numpy(gradient(values, x, y)[1][0])

    def run_hvp():
        keras.ops.convert_to_numpy(product(values, vectors, x, y)[0])

    seconds = interleaved({"gradient": run_gradient, "hvp": run_hvp}, repeat=repeat, warmup=2,
                          number=5)
    return seconds


def _first_within(estimates, reference):
    for count, value in enumerate(estimates, start=1):
        if abs(value - reference) <= TOLERANCE * abs(reference):
            return count
    return None


def _lanczos_curve(objective, start, steps):
    from kerastrain.diagnostics._lanczos import lanczos

    _, _, _, alphas, betas, _ = lanczos(objective.hvp, objective.size, k=1,
                                        max_iterations=steps, start=start, stop_early=False)
    curve = []
    for size in range(1, len(alphas) + 1):
        tridiagonal = np.diag(alphas[:size])
        if size > 1:
            tridiagonal += np.diag(betas[: size - 1], 1) + np.diag(betas[: size - 1], -1)
        curve.append(np.linalg.eigvalsh(tridiagonal)[-1])
    return curve


def _power_curve(objective, start, steps):
    """PyHessian's power iteration: v <- Hv / ||Hv||, eigenvalue = v^T H v."""
    vector = start / np.linalg.norm(start)
    curve, stopped_at, previous = [], None, None
    for step in range(1, steps + 1):
        product = objective.hvp(vector)
        value = float(vector @ product)
        curve.append(value)
        if stopped_at is None and previous is not None and abs(value - previous) / (
                abs(previous) + 1e-6) < TOLERANCE:
            stopped_at = step
        previous = value
        vector = product / np.linalg.norm(product)
    return curve, stopped_at


def run(quick=False):
    from kerastrain.diagnostics._lanczos import lanczos
    from kerastrain.diagnostics._objective import Objective

    hidden, samples, steps, seeds = (16, 256, 60, 2) if quick else (32, 512, 150, 3)
    model, x, y = _model(hidden, samples)
    seconds = _timing(model, x, y, repeat=3 if quick else 7)
    objective = Objective(model, x, y)
    values, _, _, _, _, _ = lanczos(objective.hvp, objective.size, k=1, max_iterations=300,
                                    tol=1e-12, rng=123)
    reference = float(values[0])
    lanczos_counts, power_counts, pyhessian_counts = [], [], []
    for seed in range(seeds):
        start = np.random.default_rng(seed).standard_normal(objective.size)
        lanczos_counts.append(_first_within(_lanczos_curve(objective, start, steps), reference))
        curve, stopped_at = _power_curve(objective, start, steps)
        power_counts.append(_first_within(curve, reference))
        pyhessian_counts.append(stopped_at)

    def mean(counts):
        found = [c for c in counts if c is not None]
        return float(np.mean(found)) if len(found) == len(counts) else None

    lanczos_mean, power_mean = mean(lanczos_counts), mean(power_counts)
    ratios = {"hvp seconds / gradient seconds (float32, compiled)":
              seconds["hvp"] / seconds["gradient"]}
    if lanczos_mean and power_mean:
        ratios["power-iteration HVPs / Lanczos HVPs (top eigenvalue to 1e-3)"] = (
            power_mean / lanczos_mean)
    print(f"  top eigenvalue {reference:.6g}; HVPs to 1e-3: Lanczos {lanczos_counts}, "
          f"power iteration {power_counts} (cap {steps}); PyHessian's stopping rule "
          f"stops after {pyhessian_counts}")
    return {
        "ratios": ratios,
        "seconds": seconds,
        "num_parameters": objective.size,
        "num_samples": samples,
        "top_eigenvalue": reference,
        "hvps_to_tolerance": {"lanczos": lanczos_counts, "power_iteration": power_counts,
                              "power_iteration_pyhessian_stop": pyhessian_counts,
                              "cap": steps, "tolerance": TOLERANCE},
    }
