"""The Hessian of the loss: extreme eigenvalues, trace, spectral density, critical points.

Everything is built on Hessian-vector products (`kerastrain._backend.make_hvp`,
compiled once per analysis) of the loss over the whole of ``x`` on a float64
copy of the model (see `kerastrain.diagnostics` for ``dtype``). The Hessian
is never formed.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from kerastrain import _validation
from kerastrain.diagnostics import _plotting
from kerastrain.diagnostics._lanczos import lanczos
from kerastrain.diagnostics._objective import Objective

WHICH = ("largest", "smallest")


@dataclasses.dataclass(frozen=True, eq=False)
class HessianEigenResult:
    """Extreme Hessian eigenvalues found by Lanczos.

    Attributes:
        eigenvalues: ``k`` values, largest first ("largest") or smallest first.
        eigenvectors: ``(k, num_parameters)`` unit vectors (flat, in the order of
            ``model.trainable_variables``).
        residuals: ``||H v - lambda v||`` bounds of each pair.
        which, num_parameters, num_hvp, converged.
    """

    eigenvalues: tuple
    eigenvectors: np.ndarray
    residuals: tuple
    which: str
    num_parameters: int
    num_hvp: int
    converged: bool

    def __str__(self):
        values = ", ".join(f"{value:.6g}" for value in self.eigenvalues)
        state = "converged" if self.converged else "NOT converged"
        return (f"Hessian {self.which} eigenvalues ({self.num_parameters} parameters, "
                f"{self.num_hvp} Hessian-vector products, {state}): {values}")

    def plot(self):
        """Stem plot of the eigenvalues."""
        figure = _plotting.new_figure(figsize=(6, 4))
        axes = figure.add_subplot()
        axes.stem(np.arange(1, len(self.eigenvalues) + 1), self.eigenvalues)
        axes.axhline(0.0, color="gray", linewidth=0.5)
        axes.set(xlabel="index", ylabel="eigenvalue", title=f"Hessian: {self.which} eigenvalues")
        return figure


@dataclasses.dataclass(frozen=True, eq=False)
class HessianTraceResult:
    """Hutchinson's estimate of the Hessian trace.

    Attributes:
        trace: mean of ``z^T H z`` over Rademacher probes ``z``.
        standard_error: standard error of that mean.
        estimates: the per-probe values ``z^T H z``.
        num_hvp: Hessian-vector products used (one per probe).
    """

    trace: float
    standard_error: float
    estimates: np.ndarray
    num_parameters: int
    num_hvp: int

    def __str__(self):
        return (f"Hessian trace ~ {self.trace:.6g} +/- {self.standard_error:.2g} "
                f"(Hutchinson, {len(self.estimates)} Rademacher probes, "
                f"{self.num_parameters} parameters)")

    def plot(self):
        """The running mean of the probes with a one-standard-error band."""
        figure = _plotting.new_figure(figsize=(6, 4))
        axes = figure.add_subplot()
        count = np.arange(1, len(self.estimates) + 1)
        running = np.cumsum(self.estimates) / count
        spread = np.array([np.std(self.estimates[:i], ddof=1) / np.sqrt(i) if i > 1 else 0.0
                           for i in count])
        axes.plot(count, running, label="running estimate")
        axes.fill_between(count, running - spread, running + spread, alpha=0.3)
        axes.set(xlabel="probes", ylabel="trace", title="Hessian trace (Hutchinson)")
        axes.legend()
        return figure


CURVATURE_TOLERANCE = 0.01


@dataclasses.dataclass(frozen=True)
class EigenvalueSigns:
    """How many Hessian eigenvalues are positive, negative and near zero.

    The one definition every diagnostic reports: with ``radius = max|lambda|``,
    an eigenvalue is near zero when ``|lambda| <= curvature_tolerance * radius``
    (``threshold``), positive above ``threshold`` and negative below
    ``-threshold``. Networks have many (near-)zero eigenvalues (dead units,
    constant inputs, softmax invariance) that a bare ``lambda > 0`` splits at
    random. From stochastic Lanczos quadrature the fractions are the
    quadrature weight in each range and the counts are those fractions of
    ``num_parameters`` (estimates, summing to ``num_parameters``).

    Attributes:
        positive, negative, near_zero: fractions, summing to 1.
        threshold: the absolute ``curvature_tolerance * radius``.
        curvature_tolerance, num_parameters.
    """

    positive: float
    negative: float
    near_zero: float
    threshold: float
    curvature_tolerance: float
    num_parameters: int

    @property
    def counts(self):
        """``(positive, negative, near_zero)`` eigenvalue counts summing to ``num_parameters``."""
        exact = np.array([self.positive, self.negative, self.near_zero]) * self.num_parameters
        counts = np.floor(exact).astype(int)
        remainder = self.num_parameters - int(counts.sum())
        counts[np.argsort(counts - exact)[:remainder]] += 1  # largest remainders first
        return tuple(int(count) for count in counts)

    def __str__(self):
        positive, negative, near_zero = self.counts
        return (f"eigenvalues: {positive} positive, {negative} negative, {near_zero} near zero "
                f"(|lambda| <= {self.threshold:.3g}, {self.curvature_tolerance:g} of max|lambda|)")


def eigenvalue_signs(nodes, weights, num_parameters, curvature_tolerance=CURVATURE_TOLERANCE,
                     radius=None):
    """`EigenvalueSigns` from SLQ ``nodes`` and ``weights`` (or exact eigenvalues, weights 1).

    ``radius`` defaults to ``max|nodes|`` (the extreme Ritz values converge first).
    """
    _validation.check_in_range("curvature_tolerance", curvature_tolerance, 0.0, 1.0)
    nodes, weights = np.asarray(nodes, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    radius = float(np.max(np.abs(nodes))) if radius is None else float(radius)
    threshold = float(curvature_tolerance) * radius
    total = float(np.sum(weights))
    positive = float(np.sum(weights[nodes > threshold]) / total)
    negative = float(np.sum(weights[nodes < -threshold]) / total)
    return EigenvalueSigns(positive, negative, max(0.0, 1.0 - positive - negative), threshold,
                           float(curvature_tolerance), int(num_parameters))


@dataclasses.dataclass(frozen=True, eq=False)
class HessianDensityResult:
    """Spectral density of the Hessian by stochastic Lanczos quadrature.

    Attributes:
        grid, density: the Gaussian-smoothed density on a grid (integrates to 1).
        nodes, weights: ``(num_runs, num_iterations)`` quadrature nodes (Ritz
            values) and weights (squared first components of the Ritz vectors).
        signs: `EigenvalueSigns`: estimated positive / negative / near-zero
            fractions and counts (``fraction_positive`` is ``signs.positive``).
        sigma, num_hvp.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    signs: EigenvalueSigns
    sigma: float
    num_parameters: int
    num_hvp: int

    @property
    def fraction_positive(self):
        """Estimated fraction of eigenvalues above ``signs.threshold``."""
        return self.signs.positive

    def __str__(self):
        return (f"Hessian spectral density (SLQ, {self.nodes.shape[0]} runs x "
                f"{self.nodes.shape[1]} steps, {self.num_hvp} Hessian-vector products): "
                f"support ~ [{self.nodes.min():.4g}, {self.nodes.max():.4g}], "
                f"fraction positive {self.fraction_positive:.3f}; {self.signs}")

    def plot(self):
        """The density on a log scale, as in Ghorbani et al. (2019)."""
        figure = _plotting.new_figure(figsize=(6, 4))
        axes = figure.add_subplot()
        axes.semilogy(self.grid, np.maximum(self.density, 1e-12))
        axes.set(xlabel="eigenvalue", ylabel="density", title="Hessian spectral density (SLQ)")
        return figure


def _seed_rng(seed):
    if seed is not None:
        _validation.check_integer("seed", seed, minimum=0)
    return np.random.default_rng(seed)


def _objective(model, x, y, batch_size, dtype):
    return Objective(model, x, y, dtype=dtype, batch_size=batch_size)


def hessian_eigenvalues(model, x, y, k=1, which="largest", max_iterations=100, tol=1e-6,
                        batch_size=None, dtype="float64", seed=None):
    """The ``k`` largest or smallest eigenvalues of the loss Hessian (Lanczos).

    Lanczos with full reorthogonalization on Hessian-vector products; stops
    when every wanted Ritz pair has residual ``<= tol * max|theta|`` (the
    eigenvalue error is then about residual² / gap).

    Args:
        model: a compiled, built keras.Model (single loss).
        x, y: the data; the loss is the mean over all of it.
        k: how many eigenvalues (1 <= k <= number of parameters). Default 1.
        which: "largest" (algebraically) or "smallest". Default "largest".
        max_iterations: Lanczos steps at most (capped at the parameter count). Default 100.
        tol: relative residual tolerance. Default 1e-6.
        batch_size: evaluate the loss in chunks (None: all at once).
        dtype: "float64" (a float64 copy of the model, default) or "float32".
        seed: seed of the random start vector.

    Example:
        >>> result = hessian_eigenvalues(model, x, y, k=3)
        >>> result.eigenvalues

    Reference: Lanczos (1950); Ghorbani, Krishnan & Xiao (2019), "An
    Investigation into Neural Net Optimization via Hessian Eigenvalue Density".
    """
    k = _validation.check_integer("k", k, minimum=1)
    _validation.check_one_of("which", which, WHICH)
    max_iterations = _validation.check_integer("max_iterations", max_iterations, minimum=1)
    _validation.check_positive("tol", tol)
    rng = _seed_rng(seed)
    objective = _objective(model, x, y, batch_size, dtype)
    if k > objective.size:
        raise _validation.argument_error(
            "k", f"be at most the number of trainable parameters ({objective.size})", k,
        )
    values, vectors, residuals, _, _, converged = lanczos(
        objective.hvp, objective.size, k=k, which=which,
        max_iterations=max(max_iterations, k), tol=tol, rng=rng,
    )
    if not converged:
        warnings.warn(
            f"Lanczos did not converge in {max_iterations} iterations (residuals "
            f"{np.max(residuals):.3g}); increase `max_iterations`.", stacklevel=2,
        )
    return HessianEigenResult(
        tuple(float(v) for v in values), vectors, tuple(float(r) for r in residuals),
        which, objective.size, objective.num_hvp, bool(converged),
    )


TRACE_METHODS = ("hutchinson", "hutchinson++")


def hessian_trace(model, x, y, num_probes=100, method="hutchinson", batch_size=None,
                  dtype="float64", seed=None):
    """Hutchinson's trace estimate ``E[z^T H z]`` with Rademacher ``z``.

    Unbiased; the variance of one probe is ``2 * sum_{i != j} H_ij^2``, so the
    reported standard error shrinks as ``1/sqrt(num_probes)`` -- but for a
    network Hessian (a few large outlying eigenvalues) it is often 5-20% of the
    trace at 100 probes. ``method="hutchinson++"`` (Meyer et al. 2021) spends
    a third of the products on a sketch ``Q = orth(H S)`` of the top of the
    spectrum, computes ``trace(Q^T H Q)`` exactly and runs Hutchinson only on
    the deflated rest: same number of products, far smaller error, at the cost
    of storing ``num_probes / 3`` parameter-sized vectors.

    Args:
        num_probes: Hessian-vector products to spend (one per Rademacher vector
            for Hutchinson; >= 3 for Hutchinson++). Default 100.
        method: "hutchinson" (default) or "hutchinson++".
        Other arguments as in `hessian_eigenvalues`.

    Example:
        >>> hessian_trace(model, x, y, num_probes=100).trace

    Reference: Hutchinson (1989), "A stochastic estimator of the trace of the
    influence matrix for Laplacian smoothing splines"; Yao et al. (2020),
    PyHessian; Meyer, Musco, Musco & Woodruff (2021), "Hutch++: Optimal
    Stochastic Trace Estimation".
    """
    _validation.check_one_of("method", method, TRACE_METHODS)
    minimum = 3 if method == "hutchinson++" else 1
    num_probes = _validation.check_integer("num_probes", num_probes, minimum=minimum)
    rng = _seed_rng(seed)
    objective = _objective(model, x, y, batch_size, dtype)
    if method == "hutchinson":
        estimates = np.empty(num_probes)
        for i in range(num_probes):
            z = rng.choice([-1.0, 1.0], size=objective.size)
            estimates[i] = z @ objective.hvp(z)
    else:
        estimates = _hutchinson_plus_plus(objective, num_probes, rng)
    count = len(estimates)
    error = float(np.std(estimates, ddof=1) / np.sqrt(count)) if count > 1 else float("inf")
    return HessianTraceResult(float(np.mean(estimates)), error, estimates, objective.size,
                              objective.num_hvp)


def _hutchinson_plus_plus(objective, num_probes, rng):
    """Per-probe estimates ``trace(Q^T H Q) + g^T (I-QQ^T) H (I-QQ^T) g``."""
    sketch = min(num_probes // 3, objective.size)
    probes = num_probes - 2 * sketch
    signs = rng.choice([-1.0, 1.0], size=(sketch, objective.size))
    q, _ = np.linalg.qr(np.stack([objective.hvp(s) for s in signs], axis=1))
    low_rank = sum(column @ objective.hvp(column) for column in q.T)
    estimates = np.empty(probes)
    for i in range(probes):
        g = rng.choice([-1.0, 1.0], size=objective.size)
        g = g - q @ (q.T @ g)
        hg = objective.hvp(g)
        estimates[i] = low_rank + g @ (hg - q @ (q.T @ hg))
    return estimates


def slq(objective, num_runs, num_iterations, rng):
    """Stochastic Lanczos quadrature nodes and weights, ``(runs, steps)`` arrays."""
    steps = min(num_iterations, objective.size)
    nodes = np.zeros((num_runs, steps))
    weights = np.zeros((num_runs, steps))
    for run in range(num_runs):
        start = rng.choice([-1.0, 1.0], size=objective.size)
        _, _, _, alphas, betas, _ = lanczos(
            objective.hvp, objective.size, k=steps, which="largest", max_iterations=steps,
            rng=rng, start=start, stop_early=False,
        )
        size = len(alphas)
        tridiagonal = np.diag(alphas)
        if size > 1:
            tridiagonal += np.diag(betas[: size - 1], 1) + np.diag(betas[: size - 1], -1)
        theta, s = np.linalg.eigh(tridiagonal)
        nodes[run, :size], weights[run, :size] = theta, s[0] ** 2
    return nodes, weights


def hessian_density(model, x, y, num_runs=5, num_iterations=80, sigma=None, num_points=512,
                    batch_size=None, dtype="float64", seed=None,
                    curvature_tolerance=CURVATURE_TOLERANCE):
    """The Hessian's eigenvalue density by stochastic Lanczos quadrature (SLQ).

    Each run starts Lanczos from a normalized Rademacher vector; the Ritz
    values are quadrature nodes and the squared first components of the
    Ritz vectors their weights. The density is the average over runs of
    Gaussians of width ``sigma`` centred on the nodes.

    Args:
        num_runs: independent starting vectors. Default 5.
        num_iterations: Lanczos steps per run (capped at the parameter count). Default 80.
        sigma: Gaussian width; default 1% of the spectrum's estimated range.
        num_points: grid size. Default 512.
        curvature_tolerance: eigenvalues with ``|lambda| <= curvature_tolerance *
            max|lambda|`` count as near zero (`EigenvalueSigns`). Default 0.01, the
            resolution of the density's default smoothing.
        Other arguments as in `hessian_eigenvalues`.

    Reference: Ghorbani, Krishnan & Xiao (2019), "An Investigation into Neural
    Net Optimization via Hessian Eigenvalue Density"; Lin, Saad & Yang (2016).
    """
    num_runs = _validation.check_integer("num_runs", num_runs, minimum=1)
    num_iterations = _validation.check_integer("num_iterations", num_iterations, minimum=1)
    num_points = _validation.check_integer("num_points", num_points, minimum=2)
    if sigma is not None:
        _validation.check_positive("sigma", sigma)
    _validation.check_in_range("curvature_tolerance", curvature_tolerance, 0.0, 1.0)
    rng = _seed_rng(seed)
    objective = _objective(model, x, y, batch_size, dtype)
    return _density(objective, num_runs, num_iterations, sigma, num_points, rng,
                    curvature_tolerance)


def _density(objective, num_runs, num_iterations, sigma, num_points, rng,
             curvature_tolerance=CURVATURE_TOLERANCE, radius=None):
    nodes, weights = slq(objective, num_runs, num_iterations, rng)
    low, high = float(nodes.min()), float(nodes.max())
    width = max(high - low, abs(high), 1e-12)
    sigma = 0.01 * width if sigma is None else float(sigma)
    grid = np.linspace(low - 5 * sigma, high + 5 * sigma, num_points)
    gauss = np.exp(-0.5 * ((grid[None, None, :] - nodes[..., None]) / sigma) ** 2)
    density = np.sum(weights[..., None] * gauss, axis=(0, 1)) / (
        num_runs * sigma * np.sqrt(2 * np.pi)
    )
    signs = eigenvalue_signs(nodes, weights, objective.size, curvature_tolerance, radius)
    return HessianDensityResult(grid, density, nodes, weights, signs, sigma,
                                objective.size, objective.num_hvp)
