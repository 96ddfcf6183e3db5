"""Gradient check: analytic gradients against central differences, per layer (cs231n)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from kerastrain import _validation
from kerastrain.diagnostics import _objective, _plotting

# cs231n "Gradient checks": relative error > 1e-2 means the gradient is
# probably wrong; 1e-2..1e-4 is uncomfortable; < 1e-4 is fine for objectives
# with kinks; < 1e-7 is good.
THRESHOLDS = ((1e-7, "good"), (1e-4, "acceptable"), (1e-2, "suspicious"))


def _status(error):
    for limit, name in THRESHOLDS:
        if error < limit:
            return name
    return "wrong"


@dataclasses.dataclass(frozen=True)
class LayerGradientCheck:
    """One layer's verdict: the largest relative error over its checked coordinates."""

    layer: str
    max_relative_error: float
    status: str
    num_coordinates: int
    num_kinks: int


@dataclasses.dataclass(frozen=True)
class GradientCheckResult:
    """Analytic vs numerical gradient, per layer.

    Attributes:
        layers: a `LayerGradientCheck` per layer with trainable weights.
        coordinates: ``(variable path, flat index, analytic, numerical,
            relative error, kink)`` for every coordinate checked.
        passed: True when every layer is "good" or "acceptable" (relative
            error < 1e-4 on every coordinate not at a kink).
        epsilon, dtype.
    """

    layers: tuple
    coordinates: tuple
    passed: bool
    epsilon: float
    dtype: str

    @property
    def num_kinks(self):
        return sum(layer.num_kinks for layer in self.layers)

    def __str__(self):
        lines = [f"gradient check ({self.dtype}, epsilon={self.epsilon:g}): "
                 + ("passed" if self.passed else "FAILED")]
        for layer in self.layers:
            kinks = f", {layer.num_kinks} at kinks (ignored)" if layer.num_kinks else ""
            lines.append(f"  {layer.layer:<40s} {layer.max_relative_error:9.2e}  "
                         f"{layer.status:<10s} ({layer.num_coordinates} coordinates{kinks})")
        return "\n".join(lines)

    def plot(self):
        """Largest relative error per layer, log scale, with the cs231n thresholds."""
        figure = _plotting.new_figure(figsize=(7, 0.5 * len(self.layers) + 2))
        axes = figure.add_subplot()
        errors = [max(layer.max_relative_error, 1e-17) for layer in self.layers]
        colors = ["tab:red" if layer.status in ("wrong", "suspicious") else "tab:green"
                  for layer in self.layers]
        axes.barh([layer.layer for layer in self.layers], errors, color=colors)
        axes.set_xscale("log")
        for limit, name in THRESHOLDS:
            axes.axvline(limit, color="gray", linestyle="--", linewidth=0.8)
            axes.annotate(f"< {name}", (limit, 1.0), xycoords=("data", "axes fraction"),
                          fontsize=8, ha="right", va="bottom")
        axes.set(xlabel="relative error |a - n| / max(|a|, |n|)", title="gradient check")
        figure.tight_layout()
        return figure


def _layer_name(path):
    return path.rsplit("/", 1)[0] if "/" in path else path


def gradient_check(model, x, y, num_coordinates=5, epsilon=1e-6, batch_size=None,
                   dtype="float64", seed=None):
    """Compare the analytic gradient with central differences on a few coordinates per weight.

    For each checked coordinate ``i`` the numerical derivative is
    ``(L(theta + h e_i) - L(theta - h e_i)) / 2h`` and the relative error
    ``|a - n| / max(|a|, |n|, floor)`` (cs231n), with ``floor = 1e-4 * max|a|``
    so coordinates whose true derivative is zero are not judged on rounding
    noise. A coordinate is at a *kink* (ReLU near 0, max-pooling ties) when the
    one-sided slopes differ by the same amount at steps ``h`` and ``2h`` (a
    smooth loss's second difference doubles with the step instead); kinks are
    reported and warned about, and left out of the verdict.

    Args:
        model: a compiled, built keras.Model (single loss).
        x, y: data (a small batch is enough).
        num_coordinates: coordinates checked per weight tensor. Default 5.
        epsilon: the step ``h``. Default 1e-6 (float64).
        batch_size, dtype, seed: as in `hessian_eigenvalues`; use the default
            ``dtype="float64"`` -- in float32 central differences are too noisy.

    Example:
        >>> print(gradient_check(model, x[:32], y[:32]))

    Reference: cs231n, "Neural Networks Part 3: Learning and Evaluation --
    Gradient checks".
    """
    num_coordinates = _validation.check_integer("num_coordinates", num_coordinates, minimum=1)
    epsilon = _validation.check_positive("epsilon", epsilon)
    if seed is not None:
        _validation.check_integer("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    objective = _objective.Objective(model, x, y, dtype=dtype, batch_size=batch_size)
    f0, analytic = objective.value_and_grad()
    floor = max(1e-4 * float(np.max(np.abs(analytic))), 1e-12)
    noise = 1e4 * np.finfo(np.float64 if dtype == "float64" else np.float32).eps * max(
        abs(f0), 1.0) / epsilon
    rows, start = [], 0
    for path, size in zip(objective.paths, objective.sizes):
        chosen = rng.choice(size, size=min(size, num_coordinates), replace=False)
        for index in sorted(chosen):
            rows.append(_check_one(objective, path, index, start + index, f0, analytic,
                                   epsilon, floor, noise))
        start += size
    layers = _summarize(rows)
    if any(row[5] for row in rows):
        warnings.warn(
            f"Gradient check: {sum(row[5] for row in rows)} coordinates are at a kink of the "
            "loss (e.g. ReLU inputs near 0); their numerical gradient is unreliable and they "
            "were left out.", stacklevel=2,
        )
    passed = all(layer.status in ("good", "acceptable") for layer in layers)
    return GradientCheckResult(tuple(layers), tuple(rows), passed, epsilon, objective.dtype)


def _check_one(objective, path, index, flat, f0, analytic, epsilon, floor, noise):
    def shifted(step):
        theta = objective.theta.copy()
        theta[flat] += step
        return objective.loss(theta)

    plus, minus = shifted(epsilon), shifted(-epsilon)
    numerical = (plus - minus) / (2 * epsilon)
    curvature = abs(plus + minus - 2 * f0) / epsilon
    kink = False
    if curvature > noise:
        wide = abs(shifted(2 * epsilon) + shifted(-2 * epsilon) - 2 * f0) / (2 * epsilon)
        kink = wide < 1.5 * curvature  # smooth: wide ~ 2 * curvature
    a = float(analytic[flat])
    error = abs(a - numerical) / max(abs(a), abs(numerical), floor)
    return (path, int(index), a, float(numerical), float(error), bool(kink))


def _summarize(rows):
    layers = {}
    for path, _, _, _, error, kink in rows:
        entry = layers.setdefault(_layer_name(path), [0.0, 0, 0])
        entry[1] += 1
        if kink:
            entry[2] += 1
        else:
            entry[0] = max(entry[0], error)
    return [LayerGradientCheck(name, error, _status(error), count, kinks)
            for name, (error, count, kinks) in layers.items()]
