"""Lanczos iteration with full reorthogonalization on a symmetric operator.

Written in numpy on flat float64 vectors; the operator is a Hessian-vector
product. Full reorthogonalization (two Gram-Schmidt passes against every
earlier Lanczos vector) keeps the basis orthonormal, so no spurious copies of
converged eigenvalues appear; when the Krylov space is exhausted the iteration
restarts with a fresh random vector orthogonal to the basis, so with
``n`` iterations the spectrum is computed exactly.

Reference: Golub & Van Loan, *Matrix Computations*, 4th ed., section 10.1.
"""

from __future__ import annotations

import numpy as np


def _orthogonalize(w, basis):
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
    return w


def _ritz(alphas, betas):
    size = len(alphas)
    tridiagonal = np.diag(alphas)
    if size > 1:
        off = np.asarray(betas[: size - 1])
        tridiagonal += np.diag(off, 1) + np.diag(off, -1)
    return np.linalg.eigh(tridiagonal)


def _wanted(values, k, which):
    order = np.argsort(values)
    if which == "largest":
        return order[::-1][:k]
    if which == "smallest":
        return order[:k]
    return np.concatenate([order[:k], order[::-1][:k]])  # "both"


def lanczos(matvec, size, k=1, which="largest", max_iterations=100, tol=1e-6, rng=None,
            start=None, stop_early=True):
    """Run Lanczos; return ``(values, vectors, residuals, alphas, betas, converged)``.

    ``values``/``vectors``/``residuals`` are the wanted Ritz pairs (``k`` per
    end; ordered largest-first for "largest", smallest-first otherwise);
    ``alphas``/``betas`` the tridiagonal matrix. Converged when every wanted
    residual ``|beta_j * s_ji|`` is below ``tol * max |theta|``.
    """
    rng = np.random.default_rng(rng)
    iterations = min(size, max_iterations)
    basis = np.zeros((iterations, size))
    q = rng.standard_normal(size) if start is None else np.asarray(start, dtype=np.float64)
    q = q / np.linalg.norm(q)
    alphas, betas = [], []
    converged = False
    for j in range(iterations):
        basis[j] = q
        w = matvec(q)
        alpha = float(w @ q)
        w = _orthogonalize(w, basis[: j + 1])
        beta = float(np.linalg.norm(w))
        alphas.append(alpha)
        betas.append(beta)
        values, vectors = _ritz(alphas, betas)
        wanted = _wanted(values, min(k, j + 1), which)
        residuals = np.abs(beta * vectors[-1, wanted])
        scale = max(np.max(np.abs(values)), np.finfo(np.float64).tiny)
        if stop_early and j + 1 >= k and np.all(residuals <= tol * scale):
            converged = True
            break
        if j + 1 == iterations:
            break
        if beta <= 1e-10 * scale:  # invariant subspace: restart orthogonally
            if not stop_early:
                break
            betas[-1] = 0.0
            w = _orthogonalize(rng.standard_normal(size), basis[: j + 1])
            beta = np.linalg.norm(w)
        q = w / beta
    count = len(alphas)
    if count == size:
        converged = True  # the whole space: Ritz values are the eigenvalues
    values, vectors = _ritz(alphas, betas)
    wanted = _wanted(values, min(k, count), which)
    residuals = np.abs(betas[-1] * vectors[-1, wanted]) if count < size else np.zeros(len(wanted))
    ritz_vectors = (basis[:count].T @ vectors[:, wanted]).T
    return (values[wanted], ritz_vectors, residuals, np.asarray(alphas), np.asarray(betas),
            converged)
