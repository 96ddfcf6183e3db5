import keras
import numpy as np
import pytest

from kerastrain import diagnostics
from kerastrain.testing import TestCase


@pytest.fixture(autouse=True)
def _inject(request, tiny_mlp, make_quadratic):
    request.instance.mlp = tiny_mlp
    request.instance.make_quadratic = make_quadratic


class HessianEigenvaluesTest(TestCase):
    def test_matches_reference(self):
        # Reference: numpy.linalg.eigh of the Hessian of the test's own float64
        # numpy re-implementation of the loss, by central second differences.
        exact = np.linalg.eigvalsh(self.mlp.hessian())
        before = [v.numpy().copy() for v in self.mlp.model.weights]
        top = diagnostics.hessian_eigenvalues(self.mlp.model, self.mlp.x, self.mlp.y, k=3, seed=0)
        bottom = diagnostics.hessian_eigenvalues(
            self.mlp.model, self.mlp.x, self.mlp.y, k=1, which="smallest", seed=0
        )
        scale = np.abs(exact).max()
        np.testing.assert_allclose(top.eigenvalues, exact[::-1][:3], rtol=1e-3, atol=1e-6 * scale)
        np.testing.assert_allclose(bottom.eigenvalues, exact[:1], rtol=1e-3, atol=1e-6 * scale)
        self.assertLess(exact[0], -1e-3 * scale)  # the bottom one is a real negative value
        self.assertTrue(top.converged)
        self.assertGreater(top.num_hvp, 0)
        self.assertLessEqual(top.num_hvp, self.mlp.theta.size)
        for after, saved in zip(self.mlp.model.weights, before):
            np.testing.assert_array_equal(after.numpy(), saved)

    def test_eigenvectors_satisfy_eigen_equation(self):
        exact = self.mlp.hessian()
        result = diagnostics.hessian_eigenvalues(self.mlp.model, self.mlp.x, self.mlp.y, k=2)
        for value, vector in zip(result.eigenvalues, result.eigenvectors):
            np.testing.assert_allclose(exact @ vector, value * vector, atol=1e-5)

    def test_str_and_plot(self):
        result = diagnostics.hessian_eigenvalues(self.mlp.model, self.mlp.x, self.mlp.y, k=2)
        self.assertIn("largest eigenvalues (38 parameters", str(result))
        self.assertEqual(len(result.plot().axes), 1)

    def test_k_larger_than_parameter_count(self):
        with self.assertRaisesRegex(
            ValueError, r"Argument `k` must be at most the number of trainable parameters "
            r"\(38\). Received: k=39"
        ):
            diagnostics.hessian_eigenvalues(self.mlp.model, self.mlp.x, self.mlp.y, k=39)

    def test_bad_which(self):
        with self.assertRaisesRegex(ValueError, "Argument `which` must be one of 'largest', "
                                    "'smallest'. Received: which='top'"):
            diagnostics.hessian_eigenvalues(self.mlp.model, self.mlp.x, self.mlp.y, which="top")


class HessianTraceTest(TestCase):
    def test_matches_reference(self):
        # Plain Hutchinson: one probe has variance 2 * sum_{i!=j} H_ij^2
        # (Hutchinson 1989); for this MLP that is ~20% of the trace at 100
        # probes, so the estimate is checked against its own standard error and
        # the standard error against the exact variance.
        hessian = self.mlp.hessian()
        exact = np.trace(hessian)
        exact_std = np.sqrt(2 * (np.sum(hessian**2) - np.sum(np.diag(hessian) ** 2)) / 100)
        result = diagnostics.hessian_trace(
            self.mlp.model, self.mlp.x, self.mlp.y, num_probes=100, seed=0
        )
        self.assertEqual(result.num_hvp, 100)
        self.assertLess(abs(result.trace - exact), 3 * exact_std)
        np.testing.assert_allclose(result.standard_error, exact_std, rtol=0.3)
        self.assertIn("100 Rademacher probes", str(result))
        self.assertEqual(len(result.plot().axes), 1)

    def test_hutchinson_plus_plus_within_five_percent(self):
        exact = np.trace(self.mlp.hessian())
        for seed in range(3):
            result = diagnostics.hessian_trace(
                self.mlp.model, self.mlp.x, self.mlp.y, num_probes=100,
                method="hutchinson++", seed=seed,
            )
            self.assertEqual(result.num_hvp, 100)
            np.testing.assert_allclose(result.trace, exact, rtol=0.05)

    def test_bad_method(self):
        with self.assertRaisesRegex(ValueError, "Argument `method` must be one of 'hutchinson', "
                                    "'hutchinson\\+\\+'. Received: method='exact'"):
            diagnostics.hessian_trace(self.mlp.model, self.mlp.x, self.mlp.y, method="exact")

    def test_exact_on_diagonal_hessian(self):
        # z^T H z = trace(H) for every Rademacher z when H is diagonal: f = 3a^2 - b^2
        # has H = diag(6, -2), trace 4.
        model, x, y = self.make_quadratic([3.0, -1.0], [0.5, 0.5])
        result = diagnostics.hessian_trace(model, x, y, num_probes=3, seed=1)
        self.assertAllClose(result.estimates, [4.0, 4.0, 4.0], rtol=1e-12, atol=1e-12)


class HessianDensityTest(TestCase):
    def test_matches_reference(self):
        exact = np.linalg.eigvalsh(self.mlp.hessian())
        result = diagnostics.hessian_density(
            self.mlp.model, self.mlp.x, self.mlp.y, num_runs=20, num_iterations=38, seed=0
        )
        # With as many Lanczos steps as parameters (38) every run's quadrature
        # nodes are the exact distinct eigenvalues (the softmax's invariance
        # gives a null space, where Lanczos stops early) and the weights sum to one.
        scale = np.abs(exact).max()
        for nodes, weights in zip(result.nodes, result.weights):
            used = nodes[weights > 1e-12]
            distance = np.abs(used[:, None] - exact[None, :]).min(axis=1)
            np.testing.assert_array_less(distance, 1e-6 * scale)
            nonzero = exact[np.abs(exact) > 1e-6 * scale]
            np.testing.assert_array_less(
                np.abs(nonzero[:, None] - used[None, :]).min(axis=1), 1e-6 * scale
            )
        np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, rtol=1e-10)
        # The weight on nodes above 1% of max|lambda| (the default curvature_tolerance)
        # estimates the positive fraction; for a random unit start vector one run's
        # value has variance f(1-f)/(n/2+1) <= 0.0125, so 20 runs have a standard
        # deviation <= 0.025.
        positive = np.mean(exact > 0.01 * scale)
        self.assertAlmostEqual(result.fraction_positive, positive, delta=0.1)
        self.assertLessEqual(result.num_hvp, 20 * 38)
        integral = np.trapezoid(result.density, result.grid)
        self.assertAlmostEqual(integral, 1.0, places=3)
        self.assertIn("fraction positive", str(result))
        self.assertEqual(len(result.plot().axes), 1)


class CriticalPointTest(TestCase):
    def test_saddle(self):
        # f(a, b) = a^2 - b^2 at (0, 0): gradient 0, Hessian diag(2, -2), the
        # escape direction is +-(0, 1) and f(0, t) = -t^2 drops by t^2.
        model, x, y = self.make_quadratic([1.0, -1.0])
        result = diagnostics.critical_point(model, x, y, escape_step=0.1, seed=0)
        self.assertEqual(result.kind, "saddle point")
        self.assertAlmostEqual(result.max_eigenvalue, 2.0, places=8)
        self.assertAlmostEqual(result.min_eigenvalue, -2.0, places=8)
        (direction,) = result.escape_direction.values()
        self.assertAllClose(np.abs(direction), [0.0, 1.0], atol=1e-8)
        self.assertAlmostEqual(result.loss_decrease, 0.01, places=10)
        self.assertAlmostEqual(result.predicted_decrease, 0.01, places=10)
        # A Rademacher start (+-1, +-1)/sqrt(2) puts weight 1/2 on each eigenvector.
        self.assertAlmostEqual(result.fraction_positive, 0.5, places=10)
        self.assertIn("saddle point", str(result))
        self.assertEqual(len(result.plot().axes), 1)

    def test_minimum_maximum_and_not_critical(self):
        for coefficients, initial, kind in [
            ([1.0, 2.0], [0.0, 0.0], "local minimum"),
            ([-1.0, -2.0], [0.0, 0.0], "local maximum"),
            ([1.0, -1.0], [1.0, 0.0], "not critical"),
        ]:
            model, x, y = self.make_quadratic(coefficients, initial)
            result = diagnostics.critical_point(model, x, y, seed=0)
            self.assertEqual(result.kind, kind)
            self.assertIsNone(result.escape_direction)


class _Unrebuildable(keras.Model):
    """A subclassed model whose constructor argument cannot be serialized."""

    def __init__(self, thing):
        super().__init__()
        self.thing = thing
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


class DtypeTest(TestCase):
    def test_float32_analyses_the_model_itself(self):
        exact = np.linalg.eigvalsh(self.mlp.hessian())
        result = diagnostics.hessian_eigenvalues(
            self.mlp.model, self.mlp.x, self.mlp.y, k=1, dtype="float32", seed=0
        )
        np.testing.assert_allclose(result.eigenvalues, exact[::-1][:1], rtol=1e-3)

    def test_model_without_config_needs_float32(self):
        model = _Unrebuildable(object())
        model.compile(loss="mse")
        x, y = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
        model(x)
        with self.assertRaisesRegex(ValueError, "Argument `model` must be rebuildable from its "
                                    "config .* Received: model='_Unrebuildable' Implement "
                                    "`get_config`, or pass `dtype='float32'`"):
            diagnostics.hessian_eigenvalues(model, x, y)
        # f = mean((W x + b - 1)^2) over 2 outputs: H = (2/2) * [x;1][x;1]^T per output,
        # top eigenvalue ||[1,1,1,1]||^2 = 4 (x = ones(3) plus the bias input).
        result = diagnostics.hessian_eigenvalues(model, x, y, dtype="float32")
        self.assertAlmostEqual(result.eigenvalues[0], 4.0, places=4)
