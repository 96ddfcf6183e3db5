"""Loss landscapes (Li et al. 2018) and linear interpolation between solutions."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from kerastrain import _validation
from kerastrain.diagnostics import _checks, _objective, _plotting

NORMALIZATIONS = ("filter", "layer", "none")
BATCH_NORM = ("moving", "batch")


@dataclasses.dataclass(frozen=True, eq=False)
class LossLandscape1D:
    """Losses along one direction: ``L(theta + alpha * d)`` (or an interpolation path).

    Attributes:
        alphas, losses: the curve; ``validation_losses`` a second curve or None.
        label: what alpha means.
        direction: the flat direction ``d`` (None for an interpolation).
    """

    alphas: np.ndarray
    losses: np.ndarray
    validation_losses: np.ndarray | None
    label: str
    direction: np.ndarray | None = None

    def __str__(self):
        best = int(np.nanargmin(self.losses))
        return (f"loss along {self.label}: {len(self.alphas)} points in "
                f"[{self.alphas[0]:g}, {self.alphas[-1]:g}], loss in "
                f"[{np.nanmin(self.losses):.6g}, {np.nanmax(self.losses):.6g}], "
                f"lowest at alpha={self.alphas[best]:.3g}")

    def plot(self):
        """The loss curve (and the validation curve when there is one)."""
        figure = _plotting.new_figure(figsize=(6, 4))
        axes = figure.add_subplot()
        axes.plot(self.alphas, self.losses, label="loss")
        if self.validation_losses is not None:
            axes.plot(self.alphas, self.validation_losses, label="validation loss")
        axes.set(xlabel=f"alpha ({self.label})", ylabel="loss", title="loss landscape (1-D)")
        axes.legend()
        return figure


@dataclasses.dataclass(frozen=True, eq=False)
class LossLandscape2D:
    """Losses on the plane ``theta + alpha * d1 + beta * d2``.

    Attributes:
        alphas, betas: the grid axes; losses: ``(len(betas), len(alphas))``.
        directions: the two flat directions ``(d1, d2)``.
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    directions: tuple = ()

    def __str__(self):
        return (f"loss landscape (2-D, {self.losses.shape[1]}x{self.losses.shape[0]} grid, "
                f"filter-normalized directions): loss in [{np.nanmin(self.losses):.6g}, "
                f"{np.nanmax(self.losses):.6g}], centre {self.center_loss:.6g}")

    @property
    def center_loss(self):
        return float(self.losses[len(self.betas) // 2, len(self.alphas) // 2])

    def plot(self, kind="contour"):
        """``kind="contour"`` (default) or ``"surface"`` (3-D)."""
        _validation.check_one_of("kind", kind, ("contour", "surface"))
        figure = _plotting.new_figure(figsize=(6, 5))
        grid_a, grid_b = np.meshgrid(self.alphas, self.betas)
        if kind == "contour":
            axes = figure.add_subplot()
            contour = axes.contour(grid_a, grid_b, self.losses, levels=20)
            axes.clabel(contour, fontsize=7)
        else:
            axes = figure.add_subplot(projection="3d")
            axes.plot_surface(grid_a, grid_b, self.losses, cmap="viridis")
            axes.set_zlabel("loss")
        axes.set(xlabel="alpha", ylabel="beta", title="loss landscape (2-D)")
        return figure


def random_direction(objective, rng, normalization="filter", ignore_bias_and_norm=True):
    """A Gaussian direction, normalized per filter (Li et al.) or per layer.

    Filters are slices along a kernel's last axis (a Dense unit's incoming
    weights, a Conv filter). Weights with at most one dimension (biases,
    normalization scales and offsets) get a zero direction when
    ``ignore_bias_and_norm``, else the weights themselves (as Li et al.'s code).
    """
    pieces = []
    for weight in objective.unflatten(objective.theta):
        weight = np.asarray(weight, np.float64)
        if weight.ndim <= 1:
            pieces.append(np.zeros_like(weight) if ignore_bias_and_norm else weight.copy())
            continue
        direction = rng.standard_normal(weight.shape)
        if normalization == "filter":
            axes = tuple(range(weight.ndim - 1))
            scale = np.linalg.norm(weight, axis=axes) / (
                np.linalg.norm(direction, axis=axes) + 1e-10)
            direction = direction * scale
        elif normalization == "layer":
            direction *= np.linalg.norm(weight) / (np.linalg.norm(direction) + 1e-10)
        pieces.append(direction)
    return objective.flatten(pieces)


def _setup(model, x, y, normalization, ignore_bias_and_norm, batch_norm, distance, num_points,
           batch_size, dtype, seed):
    _validation.check_one_of("normalization", normalization, NORMALIZATIONS)
    _validation.check_one_of("batch_norm", batch_norm, BATCH_NORM)
    _validation.check_type("ignore_bias_and_norm", ignore_bias_and_norm, bool, "a bool")
    _validation.check_positive("distance", distance)
    _validation.check_integer("num_points", num_points, minimum=2)
    if seed is not None:
        _validation.check_integer("seed", seed, minimum=0)
    objective = _objective.Objective(model, x, y, dtype=dtype, batch_size=batch_size,
                                     training=batch_norm == "batch")
    return objective, np.random.default_rng(seed)


def loss_landscape_1d(model, x, y, distance=1.0, num_points=25, normalization="filter",
                      ignore_bias_and_norm=True, batch_norm="moving", batch_size=None,
                      dtype="float64", seed=None):
    """The loss along one random filter-normalized direction: ``L(theta + alpha d)``.

    Args:
        model, x, y: a compiled model and its data.
        distance: alpha runs over ``[-distance, distance]``. Default 1.
        num_points: points on the line. Default 25.
        normalization: "filter" (Li et al., default), "layer" or "none".
        ignore_bias_and_norm: zero direction on biases and normalization
            parameters (Li et al.'s default). Default True.
        batch_norm: "moving" (inference mode: batch-norm uses the model's moving
            statistics, default) or "batch" (training-mode forward pass: each
            point uses the batch's own statistics; dropout is then active too).
        batch_size, dtype, seed: as in `hessian_eigenvalues`.

    Example:
        >>> loss_landscape_1d(model, x, y).plot()

    Reference: Li, Xu, Taylor, Studer & Goldstein (2018), "Visualizing the Loss
    Landscape of Neural Nets".
    """
    objective, rng = _setup(model, x, y, normalization, ignore_bias_and_norm, batch_norm,
                            distance, num_points, batch_size, dtype, seed)
    direction = random_direction(objective, rng, normalization, ignore_bias_and_norm)
    alphas = np.linspace(-distance, distance, num_points)
    losses = np.array([objective.loss(objective.theta + a * direction) for a in alphas])
    return LossLandscape1D(alphas, losses, None, f"a random {normalization}-normalized direction",
                           direction)


def loss_landscape_2d(model, x, y, distance=1.0, num_points=21, normalization="filter",
                      ignore_bias_and_norm=True, batch_norm="moving", batch_size=None,
                      dtype="float64", seed=None):
    """The loss on the plane of two random filter-normalized directions.

    ``L(theta + alpha d1 + beta d2)`` on a ``num_points x num_points`` grid over
    ``[-distance, distance]^2`` (default 21 x 21). Arguments as in
    `loss_landscape_1d`; plot with ``.plot("contour")`` or ``.plot("surface")``.

    Reference: Li et al. (2018), "Visualizing the Loss Landscape of Neural Nets".
    """
    objective, rng = _setup(model, x, y, normalization, ignore_bias_and_norm, batch_norm,
                            distance, num_points, batch_size, dtype, seed)
    first = random_direction(objective, rng, normalization, ignore_bias_and_norm)
    second = random_direction(objective, rng, normalization, ignore_bias_and_norm)
    alphas = np.linspace(-distance, distance, num_points)
    losses = np.array([[objective.loss(objective.theta + a * first + b * second)
                        for a in alphas] for b in alphas])
    return LossLandscape2D(alphas, alphas.copy(), losses, (first, second))


def _weights_of(model_b, objective, name):
    variables = model_b.trainable_variables
    if [tuple(v.shape) for v in variables] != objective.shapes or len(
            model_b.non_trainable_variables) != len(objective.non_trainable):
        raise _validation.argument_error(
            name, "have the same architecture (weight shapes) as `model_a`", type(model_b).__name__,
        )
    theta = objective.flatten([v.value for v in variables])
    extra = [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in model_b.non_trainable_variables]
    return theta, extra


def _mix(extra_a, extra_b, alpha):
    mixed = []
    for a, b in zip(extra_a, extra_b):
        a = np.asarray(keras.ops.convert_to_numpy(a))
        if not np.issubdtype(a.dtype, np.floating):
            mixed.append(a)
            continue
        value = (1 - alpha) * a.astype(np.float64) + alpha * np.asarray(b, np.float64)
        mixed.append(value.astype(a.dtype))
    return mixed


def interpolate(model_a, model_b, x, y, num_points=25, start=-0.5, end=1.5,
                validation_data=None, batch_size=None, dtype="float64"):
    """The loss along the segment ``(1 - alpha) theta_a + alpha theta_b``.

    Keskar et al. (2016)'s plot between a small-batch and a large-batch
    solution (alpha in [-0.5, 1.5] by default, so both ends are extrapolated a
    little). Non-trainable state (batch-norm moving statistics) is
    interpolated with the same alpha; moving variances are clipped at 0 when
    extrapolating.

    Args:
        model_a, model_b: compiled models of the same architecture (model_a's
            compiled loss is used).
        x, y: data for the loss; ``validation_data=(x_val, y_val)`` adds a curve.
        num_points: Default 25. start, end: the range of alpha.
        batch_size, dtype: as in `hessian_eigenvalues`.

    Reference: Goodfellow, Vinyals & Saxe (2015), "Qualitatively characterizing
    neural network optimization problems"; Keskar et al. (2017), figure 3.
    """
    _validation.check_integer("num_points", num_points, minimum=2)
    start = _validation.check_finite_number("start", start)
    end = _validation.check_finite_number("end", end)
    if end <= start:
        raise _validation.argument_error("end", f"be larger than `start` ({start:g})", end)
    objectives = [_objective.Objective(model_a, x, y, dtype=dtype, batch_size=batch_size)]
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise _validation.argument_error("validation_data", "be a tuple (x_val, y_val)",
                                             validation_data)
        objectives.append(_objective.Objective(model_a, *validation_data, dtype=dtype,
                                               batch_size=batch_size))
    _checks.check_compiled_model(model_b, "model_b")
    theta_b, extra_b = _weights_of(model_b, objectives[0], "model_b")
    alphas = np.linspace(start, end, num_points)
    curves = []
    for objective in objectives:
        extra_a = objective.non_trainable
        losses = []
        for alpha in alphas:
            theta = (1 - alpha) * objective.theta + alpha * theta_b
            extra = _clip_variances(objective, _mix(extra_a, extra_b, alpha))
            losses.append(objective.loss(theta, extra))
        curves.append(np.array(losses))
    return LossLandscape1D(alphas, curves[0], curves[1] if len(curves) > 1 else None,
                           "model_a (0) -> model_b (1)")


def _clip_variances(objective, values):
    names = [v.path for v in objective.model.non_trainable_variables]
    return [np.maximum(value, 0) if "variance" in name else value
            for name, value in zip(names, values)]
