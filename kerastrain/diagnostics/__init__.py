"""kerastrain.diagnostics: the chapter's debugging advice as functions.

Every function takes a compiled model and data, never leaves the model's
weights modified, and returns a frozen dataclass with a readable ``__str__``
and a ``.plot()`` returning a matplotlib Figure.

Analyses of the loss surface (gradient check, Hessian, landscape, sharpness)
run on a float64 copy of the model by default (``dtype="float64"``): the
model is rebuilt from its config with a float64 dtype policy, the weights
copied in and the compiled loss rebuilt in float64. The float64 work runs
inside `kerastrain._backend.float64_scope()`: on JAX, 64-bit mode
(``jax.enable_x64``) and, on JAX and PyTorch, Keras's float64 type promotion
(instead of its float64 -> float32 rule) hold only while the analysis
computes and are restored on exit, so no global setting is left changed.
``dtype="float32"`` analyses the model itself, in its own dtype.
"""

from kerastrain.diagnostics._critical_point import CriticalPointResult, critical_point
from kerastrain.diagnostics._gradient_check import (
    GradientCheckResult,
    LayerGradientCheck,
    gradient_check,
)
from kerastrain.diagnostics._hessian import (
    HessianDensityResult,
    HessianEigenResult,
    HessianTraceResult,
    hessian_density,
    hessian_eigenvalues,
    hessian_trace,
)
from kerastrain.diagnostics._landscape import (
    LossLandscape1D,
    LossLandscape2D,
    interpolate,
    loss_landscape_1d,
    loss_landscape_2d,
)
from kerastrain.diagnostics._lr_range import LRRangeResult, lr_range_test
from kerastrain.diagnostics._sanity import LayerActivity, SanityReport, sanity_check
from kerastrain.diagnostics._sharpness import SharpnessResult, sharpness

__all__ = [
    "CriticalPointResult",
    "GradientCheckResult",
    "HessianDensityResult",
    "HessianEigenResult",
    "HessianTraceResult",
    "LRRangeResult",
    "LayerActivity",
    "LayerGradientCheck",
    "LossLandscape1D",
    "LossLandscape2D",
    "SanityReport",
    "SharpnessResult",
    "critical_point",
    "gradient_check",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_trace",
    "interpolate",
    "loss_landscape_1d",
    "loss_landscape_2d",
    "lr_range_test",
    "sanity_check",
    "sharpness",
]
