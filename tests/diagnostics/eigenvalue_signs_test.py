"""One definition of positive / negative / near-zero Hessian eigenvalues for every diagnostic."""

import numpy as np
import pytest

from kerastrain import diagnostics
from kerastrain.diagnostics._hessian import eigenvalue_signs

# f(w) = sum_i c_i w_i^2 at w = 0: gradient 0, Hessian diag(2 c). With radius 2 and
# the default tolerance 0.01 the threshold is 0.02: 2 and 1 are positive, -2 negative,
# 0, 0, 0.002 and -0.004 near zero (a bare `lambda > 0` would count 0.002 as positive).
COEFFICIENTS = [1.0, 0.5, -1.0, 0.0, 0.0, 0.001, -0.002]
HESSIAN_DIAGONAL = 2 * np.asarray(COEFFICIENTS)


def reference_counts(eigenvalues, tolerance):
    threshold = tolerance * np.abs(eigenvalues).max()
    return (int(np.sum(eigenvalues > threshold)), int(np.sum(eigenvalues < -threshold)),
            int(np.sum(np.abs(eigenvalues) <= threshold)))


@pytest.mark.parametrize("tolerance", [0.0, 0.001, 0.01, 0.5])
def test_exact_eigenvalues_match_reference(tolerance):
    signs = eigenvalue_signs(HESSIAN_DIAGONAL, np.ones(7), 7, curvature_tolerance=tolerance)
    assert signs.counts == reference_counts(HESSIAN_DIAGONAL, tolerance)
    assert signs.positive + signs.negative + signs.near_zero == pytest.approx(1.0)
    assert signs.threshold == pytest.approx(2.0 * tolerance)


def test_estimated_counts_sum_to_the_parameter_count():
    # SLQ fractions times 2410 parameters are not integers: largest remainders round.
    signs = eigenvalue_signs([1.0, 0.004, -0.3], [0.4998, 0.4, 0.1002], 2410)
    assert signs.counts == (1205, 241, 964)  # 1204.52 -> 1205, 241.48 -> 241, 963.99 -> 964
    assert str(signs).startswith("eigenvalues: 1205 positive, 241 negative, 964 near zero")


def test_density_and_critical_point_report_the_same_signs(make_quadratic):
    # Lanczos on a diagonal Hessian with 5 distinct eigenvalues ends after 5 steps: the
    # quadrature nodes are the exact eigenvalues, each weighted by its multiplicity / 7
    # (Rademacher start), so both functions must give the exact counts.
    expected = reference_counts(HESSIAN_DIAGONAL, 0.01)
    model, x, y = make_quadratic(COEFFICIENTS)
    density = diagnostics.hessian_density(model, x, y, num_runs=2, num_iterations=7, seed=0)
    point = diagnostics.critical_point(model, x, y, num_runs=2, num_iterations=7, seed=0)
    assert density.signs.counts == expected == (2, 1, 4)
    assert point.signs.counts == expected
    assert point.fraction_positive == density.fraction_positive == pytest.approx(2 / 7)
    assert point.kind == "saddle point"
    assert "2 positive, 1 negative, 4 near zero" in str(density)
    assert "2 positive, 1 negative, 4 near zero" in str(point)


def test_curvature_tolerance_is_validated(make_quadratic):
    model, x, y = make_quadratic([1.0])
    message = "Argument `curvature_tolerance` must be in [0, 1]. Received: curvature_tolerance=2"
    for function in (diagnostics.hessian_density, diagnostics.critical_point):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            function(model, x, y, curvature_tolerance=2)
