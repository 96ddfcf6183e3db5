"""Critical-point classification and saddle escape (Hung-yi Lee's lecture)."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerastrain import _validation
from kerastrain.diagnostics import _hessian, _objective
from kerastrain.diagnostics._lanczos import lanczos

KINDS = ("local minimum", "local maximum", "saddle point", "not critical")


@dataclasses.dataclass(frozen=True, eq=False)
class CriticalPointResult:
    """What kind of point the current weights are.

    Attributes:
        kind: "local minimum", "local maximum", "saddle point" or "not critical".
        loss, gradient_norm: at the current weights.
        max_eigenvalue, min_eigenvalue: extreme Hessian eigenvalues (Lanczos).
        signs: `EigenvalueSigns`: positive / negative / near-zero fractions and
            counts from the SLQ density, near zero meaning ``|lambda| <=
            curvature_tolerance * max|lambda|`` (the same definition as
            `hessian_density`); ``fraction_positive`` is ``signs.positive``
            (Lee's "minimum ratio").
        escape_direction: for a saddle, the unit eigenvector of the most
            negative eigenvalue, as ``{variable path: array}`` (sign chosen so
            the loss decreases most); otherwise None.
        escape_step: the step taken along it.
        loss_decrease: ``L(theta) - L(theta + step * u)`` measured (saddle only).
        predicted_decrease: ``step**2 * |lambda_min| / 2`` from the Taylor expansion.
        num_hvp, num_gradients: work done.
    """

    kind: str
    loss: float
    gradient_norm: float
    max_eigenvalue: float
    min_eigenvalue: float
    signs: _hessian.EigenvalueSigns
    escape_direction: dict | None
    escape_step: float
    loss_decrease: float | None
    predicted_decrease: float | None
    density: _hessian.HessianDensityResult
    num_hvp: int
    num_gradients: int

    @property
    def fraction_positive(self):
        """Estimated fraction of eigenvalues above ``signs.threshold``."""
        return self.signs.positive

    def __str__(self):
        lines = [
            f"critical point: {self.kind}",
            f"  loss {self.loss:.6g}, gradient norm {self.gradient_norm:.3g}",
            f"  Hessian eigenvalues in [{self.min_eigenvalue:.6g}, {self.max_eigenvalue:.6g}], "
            f"fraction positive {self.fraction_positive:.3f}",
            f"  {self.signs}",
        ]
        if self.escape_direction is not None:
            lines.append(
                f"  escape along the eigenvector of {self.min_eigenvalue:.6g}: a step of "
                f"{self.escape_step:g} lowers the loss by {self.loss_decrease:.6g} "
                f"(second-order prediction {self.predicted_decrease:.6g})"
            )
        lines.append(f"  ({self.num_hvp} Hessian-vector products, "
                     f"{self.num_gradients} gradient evaluations)")
        return "\n".join(lines)

    def plot(self):
        """The spectral density with the extreme eigenvalues marked."""
        figure = self.density.plot()
        axes = figure.axes[0]
        for value, label in ((self.min_eigenvalue, "min"), (self.max_eigenvalue, "max")):
            axes.axvline(value, color="red", linestyle="--", linewidth=0.8)
            axes.annotate(f"lambda_{label}={value:.3g}", (value, 0.5),
                          xycoords=("data", "axes fraction"), rotation=90, fontsize=8)
        axes.set_title(f"Hessian spectrum: {self.kind}")
        return figure


def critical_point(model, x, y, gradient_tolerance=1e-3,
                   curvature_tolerance=_hessian.CURVATURE_TOLERANCE,
                   escape_step=0.1, num_runs=3, num_iterations=60, max_iterations=100,
                   batch_size=None, dtype="float64", seed=None):
    """Classify the current weights as a local minimum, maximum, saddle point or not critical.

    With the gradient ``g`` and Hessian ``H`` of the loss at the weights
    (second-order Taylor expansion ``L(theta) ~ L + g^T d + d^T H d / 2``):
    ``||g|| > gradient_tolerance`` is "not critical"; otherwise all eigenvalues
    above ``-curvature_tolerance * max|lambda|`` is a "local minimum", all below
    ``+curvature_tolerance * max|lambda|`` a "local maximum", mixed signs a
    "saddle point" (eigenvalues within that tolerance count as zero, the
    definition `EigenvalueSigns` reports). At a saddle the loss drops along the eigenvector ``u`` of
    the most negative eigenvalue, by about ``step**2 |lambda| / 2``; both are
    reported. ``lambda_max`` / ``lambda_min`` come from one Lanczos run, the
    fraction of positive eigenvalues from stochastic Lanczos quadrature.

    Args:
        model, x, y: a compiled model and its data.
        gradient_tolerance: gradient norm below which the point is critical. Default 1e-3.
        curvature_tolerance: relative size of an eigenvalue counted as zero, for the
            kind and the positive / negative / near-zero counts. Default 0.01.
        escape_step: length of the step along the escape direction. Default 0.1.
        num_runs, num_iterations: SLQ settings for the fraction of positive eigenvalues.
        max_iterations: Lanczos steps at most for the extreme eigenvalues. Default 100.
        batch_size, dtype, seed: as in `hessian_eigenvalues`.

    Example:
        >>> print(critical_point(model, x, y))

    Reference: Hung-yi Lee, "When gradient is small: local minimum and saddle
    point" (lecture); Dauphin et al. (2014), "Identifying and attacking the
    saddle point problem in high-dimensional non-convex optimization".
    """
    _validation.check_positive("gradient_tolerance", gradient_tolerance, allow_zero=True)
    _validation.check_in_range("curvature_tolerance", curvature_tolerance, 0.0, 1.0)
    _validation.check_positive("escape_step", escape_step)
    num_runs = _validation.check_integer("num_runs", num_runs, minimum=1)
    num_iterations = _validation.check_integer("num_iterations", num_iterations, minimum=1)
    max_iterations = _validation.check_integer("max_iterations", max_iterations, minimum=1)
    rng = _hessian._seed_rng(seed)
    objective = _objective.Objective(model, x, y, dtype=dtype, batch_size=batch_size)
    loss, grad = objective.value_and_grad()
    gradient_norm = float(np.linalg.norm(grad))
    values, vectors, _, _, _, _ = lanczos(
        objective.hvp, objective.size, k=1, which="both", max_iterations=max_iterations,
        tol=1e-8, rng=rng,
    )
    lowest, highest = float(values[0]), float(values[-1])
    radius = max(abs(lowest), abs(highest))
    density = _hessian._density(objective, num_runs, num_iterations, None, 256, rng,
                                curvature_tolerance, radius)
    scale = curvature_tolerance * radius
    if gradient_norm > gradient_tolerance:
        kind = "not critical"
    elif highest < scale:
        kind = "local maximum"
    elif lowest < -scale:
        kind = "saddle point"
    else:
        kind = "local minimum"
    direction = decrease = predicted = None
    if kind == "saddle point":
        unit = vectors[0] / np.linalg.norm(vectors[0])
        trials = [(loss - objective.loss(objective.theta + sign * escape_step * unit), sign)
                  for sign in (1.0, -1.0)]
        decrease, sign = max(trials)
        direction = objective.split(sign * unit)
        decrease = float(decrease)
        predicted = 0.5 * abs(lowest) * escape_step**2
    return CriticalPointResult(
        kind, float(loss), gradient_norm, highest, lowest, density.signs,
        direction, float(escape_step), decrease, predicted, density, objective.num_hvp,
        objective.num_gradients,
    )
