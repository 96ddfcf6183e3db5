"""Keskar et al.'s epsilon-box sharpness, maximized with scipy's L-BFGS-B."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerastrain import _validation
from kerastrain.diagnostics import _objective, _plotting


@dataclasses.dataclass(frozen=True, eq=False)
class SharpnessResult:
    """Sharpness in percent and the perturbation reaching it.

    Attributes:
        sharpness: ``100 * (max_{z in C_eps} L(theta + z) - L(theta)) / (1 + L(theta))``.
        loss, max_loss: ``L(theta)`` and the largest loss found in the box.
        perturbation: the maximizing ``z`` (flat, trainable-variable order).
        epsilon, num_gradients, converged.
    """

    sharpness: float
    loss: float
    max_loss: float
    perturbation: np.ndarray
    epsilon: float
    num_gradients: int
    converged: bool

    def __str__(self):
        return (f"sharpness (Keskar et al., epsilon={self.epsilon:g}): {self.sharpness:.4g}% "
                f"(loss {self.loss:.6g} -> max {self.max_loss:.6g} in the box, "
                f"{self.num_gradients} gradient evaluations)")

    def plot(self):
        """Histogram of the maximizing perturbation relative to its box."""
        figure = _plotting.new_figure(figsize=(6, 4))
        axes = figure.add_subplot()
        axes.hist(self.perturbation, bins=50)
        axes.set(xlabel="perturbation z_i", ylabel="count",
                 title=f"sharpness {self.sharpness:.3g}% (epsilon={self.epsilon:g})")
        return figure


def sharpness(model, x, y, epsilon=1e-3, max_iterations=10, batch_size=None, dtype="float64",
              seed=None):
    """Keskar et al.'s sharpness: the largest relative loss increase in an epsilon-box.

    ``C_eps = {z : |z_i| <= epsilon * (|theta_i| + 1)}`` and
    ``sharpness = 100 * (max_{z in C_eps} L(theta + z) - L(theta)) / (1 + L(theta))``.
    The maximum is approximated with ``max_iterations`` steps of scipy's
    L-BFGS-B (bounded, on ``-L``) from a random point of the box, as in the
    paper (which used 10 iterations). Only the full space (``A = I``) is
    implemented, not the paper's random-subspace variant.

    Caveat: the measure depends on the parametrization. Rescaling the weights
    of consecutive ReLU layers (``W1 * a``, ``W2 / a``) leaves the function
    unchanged but changes the sharpness (Dinh et al. 2017, "Sharp Minima Can
    Generalize For Deep Nets"); the ``|theta_i| + 1`` box only partly
    compensates. Compare sharpness between models of the same architecture
    and parametrization.

    Args:
        model, x, y: a compiled model and its data.
        epsilon: the box's relative half-width. Default 1e-3 (the paper's 1e-3 / 5e-4).
        max_iterations: L-BFGS-B iterations. Default 10.
        batch_size, dtype, seed: as in `hessian_eigenvalues`.

    Example:
        >>> sharpness(model, x, y, epsilon=1e-3).sharpness

    Reference: Keskar, Mudigere, Nocedal, Smelyanskiy & Tang (2017), "On
    Large-Batch Training for Deep Learning: Generalization Gap and Sharp
    Minima", metric 2.1.
    """
    epsilon = _validation.check_positive("epsilon", epsilon)
    max_iterations = _validation.check_integer("max_iterations", max_iterations, minimum=1)
    if seed is not None:
        _validation.check_integer("seed", seed, minimum=0)
    try:
        from scipy.optimize import minimize
    except ImportError as error:  # pragma: no cover - scipy is a dependency
        raise ImportError("`sharpness` needs scipy: `pip install scipy`.") from error
    objective = _objective.Objective(model, x, y, dtype=dtype, batch_size=batch_size)
    theta = objective.theta
    loss = objective.loss()
    bound = epsilon * (np.abs(theta) + 1.0)
    rng = np.random.default_rng(seed)
    start = rng.uniform(-bound, bound)

    def negative(z):
        value, grad = objective.value_and_grad(theta + z)
        return -value, -grad

    found = minimize(negative, start, jac=True, method="L-BFGS-B",
                     bounds=list(zip(-bound, bound)), options={"maxiter": max_iterations})
    perturbation = np.clip(found.x, -bound, bound)
    max_loss = max(objective.loss(theta + perturbation), loss)
    value = 100.0 * (max_loss - loss) / (1.0 + loss)
    return SharpnessResult(float(value), float(loss), float(max_loss), perturbation,
                           float(epsilon), objective.num_gradients, bool(found.success))
