"""LARS, RAdam, AdaBelief and Lookahead against float64 references (and torch's RAdam)."""

import keras
import numpy as np
import torch
from optimizer_helpers import run_keras, run_numpy, run_torch

from kerastrain import optimizers
from kerastrain.testing import TestCase


def radam_reference(lr, b1, b2, eps):
    """Liu et al. 2020, Algorithm 2 (ε added to √v before the √(1−β₂ᵗ) correction, as PyTorch)."""
    rho_inf = 2 / (1 - b2) - 1

    def step(w, g, t, s):
        m = s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        v = s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho <= 5:
            return w - lr * m_hat
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return w - lr * r * m_hat * np.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
    return step


def adabelief_reference(lr, b1, b2, eps):
    """Zhuang et al. 2020, Algorithm 2."""
    def step(w, g, t, s):
        m = s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s_ = s["s"] = b2 * s.get("s", 0.0) + (1 - b2) * (g - m) ** 2 + eps
        m_hat, s_hat = m / (1 - b1**t), s_ / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(s_hat) + eps)
    return step


def lars_reference(lr, momentum, weight_decay, eta):
    """You et al. 2017 with the trust ratio on ‖g + λw‖ (optax's form): b ← μb + α·η‖w‖/‖u‖·u."""
    def step(w, g, t, s):
        u = g + weight_decay * w
        local = eta * np.linalg.norm(w) / np.linalg.norm(u)
        b = s["b"] = momentum * s.get("b", 0.0) + lr * local * u
        return w - b
    return step


def test_radam_matches_torch_and_reference():
    ours = run_keras(optimizers.RAdam(0.01, epsilon=1e-8, record_statistics=False), 40)
    reference = run_numpy(radam_reference(0.01, 0.9, 0.999, 1e-8), 40)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
    theirs = run_torch(lambda p: torch.optim.RAdam(p, lr=0.01, eps=1e-8), 40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_adabelief_matches_reference():
    ours = run_keras(optimizers.AdaBelief(0.01, epsilon=1e-12, record_statistics=False), 40)
    np.testing.assert_allclose(
        ours, run_numpy(adabelief_reference(0.01, 0.9, 0.999, 1e-12), 40), rtol=1e-5, atol=1e-5)


def test_lars_matches_reference():
    ours = run_keras(optimizers.LARS(5.0, momentum=0.9, weight_decay=0.01,
                                     record_statistics=False), 40)
    np.testing.assert_allclose(
        ours, run_numpy(lars_reference(5.0, 0.9, 0.01, 0.001), 40), rtol=1e-5, atol=1e-5)


def test_lookahead_matches_reference():
    """Zhang et al. 2019, Algorithm 1 around plain SGD: every k steps φ ← φ + α(θ − φ); θ ← φ."""
    def step(w, g, t, s):
        slow = s.setdefault("slow", w.copy())
        w = w - 0.1 * g
        if t % 3 == 0:
            s["slow"] = slow + 0.5 * (w - slow)
            w = s["slow"].copy()
        return w

    ours = run_keras(optimizers.Lookahead(keras.optimizers.SGD(0.1), sync_period=3,
                                          slow_step_size=0.5), 20)
    np.testing.assert_allclose(ours, run_numpy(step, 20), rtol=1e-5, atol=1e-6)


class LookaheadTest(TestCase):
    def test_serialization_and_statistics(self):
        optimizer = optimizers.Lookahead(optimizers.Adam(0.01), sync_period=4, slow_step_size=0.3)
        revived = self.run_serialization_test(optimizer)
        self.assertEqual(revived.sync_period, 4)
        self.assertIsInstance(revived.inner_optimizer, optimizers.Adam)
        variable = keras.Variable(np.ones((3,), "float32"))
        optimizer.build([variable])
        optimizer.apply([keras.ops.convert_to_tensor(np.full((3,), 2.0, "float32"))], [variable])
        stats = optimizer.gradient_statistics()
        self.assertAllClose(stats["global_norm"], np.sqrt(12.0), rtol=1e-6)
        # Adam's first step moves every component by lr (to within ε): ratio = lr.
        self.assertAllClose(stats["update_ratios"], [0.01], rtol=1e-4)
