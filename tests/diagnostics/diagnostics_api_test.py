import dataclasses

from kerastrain import diagnostics
from kerastrain.testing import TestCase

PUBLIC = [
    "CriticalPointResult", "GradientCheckResult", "HessianDensityResult", "HessianEigenResult",
    "HessianTraceResult", "LRRangeResult", "LayerActivity", "LayerGradientCheck",
    "LossLandscape1D", "LossLandscape2D", "SanityReport", "SharpnessResult",
    "critical_point", "gradient_check", "hessian_density", "hessian_eigenvalues",
    "hessian_trace", "interpolate", "loss_landscape_1d", "loss_landscape_2d",
    "lr_range_test", "sanity_check", "sharpness",
]


class PublicApiTest(TestCase):
    def test_all_is_pinned(self):
        self.assertEqual(sorted(diagnostics.__all__), sorted(PUBLIC))
        for name in PUBLIC:
            self.assertTrue(hasattr(diagnostics, name), name)

    def test_results_are_frozen_dataclasses(self):
        for name in PUBLIC:
            value = getattr(diagnostics, name)
            if isinstance(value, type):
                self.assertTrue(dataclasses.is_dataclass(value), name)
                self.assertTrue(value.__dataclass_params__.frozen, name)
