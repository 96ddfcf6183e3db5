"""Each transform inside a `Chain`, against a float64 numpy reference of its formula."""

import keras
import numpy as np
import pytest
from optimizer_helpers import run_keras, run_numpy

from kerastrain import optimizers
from kerastrain.optimizers import transforms as T
from kerastrain.testing import TestCase

LR = 0.1
STEPS = 25


def _chain(*transforms, learning_rate=LR):
    return optimizers.Chain(list(transforms), learning_rate=learning_rate, record_statistics=False)


def _unitwise(x):
    return np.sqrt(np.sum(x * x, axis=0, keepdims=True))


CASES = {
    "clip_by_value": (_chain(T.ClipByValue(0.3)),
                      lambda w, g, t, s: w - LR * np.clip(g, -0.3, 0.3)),
    "clip_by_norm": (_chain(T.ClipByNorm(0.5)),
                     lambda w, g, t, s: w - LR * g * 0.5 / max(np.linalg.norm(g), 0.5)),
    # Brock et al. 2021, eq. (3): unit-wise over the output axis of a (4, 3) kernel.
    "adaptive_clip": (_chain(T.AdaptiveClip(0.05)),
                      lambda w, g, t, s: w - LR * g * np.minimum(
                          1.0, 0.05 * np.maximum(_unitwise(w), 1e-3)
                          / np.maximum(_unitwise(g), 1e-6))),
    "first_moment_uncorrected": (
        _chain(T.FirstMoment(0.8, bias_correction=False)),
        lambda w, g, t, s: s.__setitem__("m", 0.8 * s.get("m", 0.0) + 0.2 * g)
        or w - LR * s["m"]),
    "rms_outside": (
        _chain(T.ScaleByRMS(0.9, 1e-3, "outside")),
        lambda w, g, t, s: s.__setitem__("v", 0.9 * s.get("v", 0.0) + 0.1 * g * g)
        or w - LR * g / (np.sqrt(s["v"]) + 1e-3)),
    "rms_inside": (
        _chain(T.ScaleByRMS(0.9, 1e-3, "inside")),
        lambda w, g, t, s: s.__setitem__("v", 0.9 * s.get("v", 0.0) + 0.1 * g * g)
        or w - LR * g / np.sqrt(s["v"] + 1e-3)),
    "decoupled_weight_decay": (
        _chain(T.ScaleByRMS(0.9, 1e-3, "inside"), T.WeightDecay(0.2)),
        lambda w, g, t, s: s.__setitem__("v", 0.9 * s.get("v", 0.0) + 0.1 * g * g)
        or w - LR * (g / np.sqrt(s["v"] + 1e-3) + 0.2 * w)),
    # Coupled (L2): the second moment sees g + λw.
    "coupled_weight_decay": (
        _chain(T.WeightDecay(0.2, decoupled=False), T.ScaleByRMS(0.9, 1e-3, "inside")),
        lambda w, g, t, s: s.__setitem__("v", 0.9 * s.get("v", 0.0) + 0.1 * (g + 0.2 * w) ** 2)
        or w - LR * (g + 0.2 * w) / np.sqrt(s["v"] + 1e-3)),
    "trust_ratio": (
        _chain(T.ScaleByTrustRatio(0.01)),
        lambda w, g, t, s: w - LR * 0.01 * np.linalg.norm(w) / np.linalg.norm(g) * g),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(name):
    optimizer, step = CASES[name]
    ours = run_keras(optimizer, STEPS)
    np.testing.assert_allclose(ours, run_numpy(step, STEPS), rtol=1e-5, atol=1e-6)


def _lr_schedule():
    return keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5)


def test_learning_rate_position_relative_to_momentum():
    """With a scheduled α: Keras puts α inside the velocity, PyTorch outside (they differ)."""
    alphas = [float(_lr_schedule()(t)) for t in range(STEPS)]

    def inside(w, g, t, s):
        b = s["b"] = 0.9 * s.get("b", 0.0) + alphas[t - 1] * g
        return w - b

    def outside(w, g, t, s):
        b = s["b"] = 0.9 * s.get("b", 0.0) + g
        return w - alphas[t - 1] * b

    keras_form = run_keras(_chain(T.ScaleByLearningRate(), T.Momentum(0.9),
                                  learning_rate=_lr_schedule()), STEPS)
    torch_form = run_keras(_chain(T.Momentum(0.9), T.ScaleByLearningRate(),
                                  learning_rate=_lr_schedule()), STEPS)
    np.testing.assert_allclose(keras_form, run_numpy(inside, STEPS), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(torch_form, run_numpy(outside, STEPS), rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(keras_form - torch_form)) > 1e-2
    # The SGD presets pick these forms (and agree with keras.optimizers.SGD on a schedule).
    preset = run_keras(optimizers.SGD(_lr_schedule(), momentum=0.9, record_statistics=False), STEPS)
    reference = run_keras(keras.optimizers.SGD(_lr_schedule(), momentum=0.9), STEPS)
    np.testing.assert_allclose(preset, reference, rtol=1e-6, atol=1e-6)


def test_clip_by_global_norm_over_two_variables():
    """g_i ← g_i · c / max(‖(g_1, g_2)‖, c): one scale for all variables."""
    a = keras.Variable(np.ones((2, 2), "float32"))
    b = keras.Variable(np.ones((3,), "float32"))
    optimizer = _chain(T.ClipByGlobalNorm(1.0), learning_rate=1.0)
    ga, gb = np.full((2, 2), 3.0, "float32"), np.full((3,), 4.0, "float32")
    optimizer.apply([ga, gb], [a, b])
    scale = 1.0 / np.sqrt(4 * 9.0 + 3 * 16.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), 1.0 - ga * scale, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(b), 1.0 - gb * scale, rtol=1e-6)


ALL_TRANSFORMS = [
    T.ClipByValue(0.5), T.ClipByNorm(1.0), T.ClipByGlobalNorm(2.0), T.AdaptiveClip(0.02, 1e-3),
    T.WeightDecay(0.01, decoupled=False), T.ScaleByLearningRate(),
    T.Momentum(_lr_schedule(), nesterov=True), T.FirstMoment(0.8),
    T.ScaleByRMS(0.99, 1e-6, "outside", True, True, True), T.AdagradScale(0.0, 1e-8, "outside", 10),
    T.AdadeltaScale(0.9, 1e-6), T.NadamMoment(0.9, 0.004), T.ScaleByTrustRatio(0.002, 1e-9),
    T.RectifiedScale(0.99, 1e-8), T.ScaleByBelief(0.9, 0.99, 1e-12),
]


class SerializationTest(TestCase):
    def test_every_transform_round_trips(self):
        for transform in ALL_TRANSFORMS:
            revived = self.run_serialization_test(transform)
            self.assertEqual(repr(revived), repr(transform))

    def test_chain_round_trips_with_all_transforms(self):
        chain = optimizers.Chain(ALL_TRANSFORMS, learning_rate=_lr_schedule(), clipnorm=None)
        revived = self.run_serialization_test(chain)
        self.assertEqual([repr(t) for t in revived.transforms], [repr(t) for t in chain.transforms])

    def test_chain_appends_learning_rate_once(self):
        chain = optimizers.Chain([T.Momentum(0.9)])
        self.assertIsInstance(chain.transforms[-1], T.ScaleByLearningRate)
        self.assertEqual(len(chain.transforms), 2)

    def test_chain_records_statistics_against_numpy(self):
        variable = keras.Variable(np.array([3.0, 4.0], "float32"))
        optimizer = optimizers.Chain([T.ClipByNorm(1.0)], learning_rate=0.5)
        optimizer.apply([np.array([0.0, 10.0], "float32")], [variable])
        stats = optimizer.gradient_statistics()
        self.assertAllClose(stats["global_norm"], 10.0)
        self.assertAllClose(stats["gradient_norms"], [10.0])  # recorded before clipping
        self.assertAllClose(stats["update_ratios"], [0.5 * 1.0 / 5.0], rtol=1e-6)
        self.assertEqual(optimizer.statistics_variable_paths, [variable.path])
