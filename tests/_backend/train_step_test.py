"""The loss-aware train step, checked inside `model.fit` against float64 numpy.

The reference is weighted linear least squares, L(θ) = Σᵢ sᵢ(xᵢᵀθ − yᵢ)² / N
(Keras's "sum over batch size" reduction), whose gradient 2/N·Xᵀ S (Xθ − y)
and Hessian 2/N·Xᵀ S X are exact (features include a 1 for the bias).
"""

import keras
import numpy as np

from kerastrain._backend import current_loss_closure, install_loss_aware_train_step
from kerastrain._backend._train_step import requires_loss_closure
from kerastrain.optimizers._sam import SAM
from kerastrain.testing import TestCase

N, D = 8, 3


class Probe(keras.optimizers.SGD):
    """SGD that records what the closure says at the current weights."""

    requires_loss_closure = True

    def build(self, variables):
        super().build(variables)
        self.seen_loss = self.add_variable((), name="seen_loss")
        self.seen_grads = [self.add_variable_from_reference(v, "seen_grad") for v in variables]
        self.seen_hvps = [self.add_variable_from_reference(v, "seen_hvp") for v in variables]

    def apply(self, grads, trainable_variables=None):
        if not self.built:  # TensorFlow builds the optimizer in its first step
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        closure = current_loss_closure(self)
        values = [v.value for v in closure.variables]
        loss, closure_grads = closure.value_and_grad(values)
        products = closure.hvp(values, [keras.ops.ones(v.shape, v.dtype) for v in values])
        self.seen_loss.assign(closure.loss(values) + 0.0 * loss)
        for variable, g, hv in zip(closure.variables, closure_grads, products):
            index = self._get_variable_index(variable)
            self.seen_grads[index].assign(g)
            self.seen_hvps[index].assign(hv)
        super().apply(grads, trainable_variables)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype("float32")
    y = rng.normal(size=(N, 1)).astype("float32")
    weights = rng.uniform(0.5, 2.0, size=(N,)).astype("float32")
    return x, y, weights


def _model(optimizer, loss="mse", jit_compile="auto"):
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1, bias_initializer="ones")])
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile)
    return install_loss_aware_train_step(model)


def _reference(model, x, y, weights):
    kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.weights)
    theta = np.concatenate([kernel[:, 0], bias])
    features = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    s = weights.astype(np.float64)
    residual = features @ theta - y[:, 0].astype(np.float64)
    loss = np.sum(s * residual**2) / len(x)
    grad = 2.0 * features.T @ (s * residual) / len(x)
    hessian = 2.0 * features.T @ (s[:, None] * features) / len(x)
    return loss, grad, hessian @ np.ones(D + 1)


def _flat(variables):
    return np.concatenate([keras.ops.convert_to_numpy(v).ravel() for v in variables])


class LossAwareTrainStepTest(TestCase):
    def _check_probe(self, jit_compile):
        x, y, weights = _data()
        model = _model(Probe(learning_rate=0.0), jit_compile=jit_compile)
        model.fit(x, y, sample_weight=weights, batch_size=N, epochs=1, verbose=0)
        loss, grad, hvp = _reference(model, x, y, weights)
        optimizer = model.optimizer
        self.assertAllClose(optimizer.seen_loss, loss, rtol=1e-5)
        self.assertAllClose(_flat(optimizer.seen_grads), grad, rtol=1e-5, atol=1e-6)
        self.assertAllClose(_flat(optimizer.seen_hvps), hvp, rtol=1e-5, atol=1e-6)
        self.assertIsNone(current_loss_closure(optimizer))  # only during the step

    def test_closure_matches_reference_in_fit(self):
        self._check_probe(jit_compile="auto")

    def test_closure_matches_reference_without_jit(self):
        self._check_probe(jit_compile=False)

    def test_recompiled_loss_is_used(self):
        x, y, weights = _data(1)
        model = _model(Probe(learning_rate=0.0), loss="mae")
        model.fit(x, y, batch_size=N, epochs=1, verbose=0)
        model.compile(optimizer=Probe(learning_rate=0.0), loss="mse")
        model.fit(x, y, batch_size=N, epochs=1, verbose=0)
        loss, _, _ = _reference(model, x, y, np.ones(N, "float32"))
        self.assertAllClose(model.optimizer.seen_loss, loss, rtol=1e-5)

    def test_closure_reaches_an_optimizer_inside_a_loss_scale_optimizer(self):
        x, y, _ = _data(2)
        plain = _model(SAM(keras.optimizers.SGD(0.1)))
        scaled = _model(keras.optimizers.LossScaleOptimizer(SAM(keras.optimizers.SGD(0.1))))
        scaled.set_weights(plain.get_weights())
        for model in (plain, scaled):
            model.fit(x, y, batch_size=N, epochs=3, shuffle=False, verbose=0)
        self.assertAllClose(scaled.weights, plain.weights, rtol=1e-5, atol=1e-6)

    def test_requires_loss_closure_looks_through_wrappers(self):
        self.assertFalse(requires_loss_closure(None))
        self.assertFalse(requires_loss_closure(keras.optimizers.SGD()))
        self.assertTrue(requires_loss_closure(SAM(keras.optimizers.SGD())))
        wrapped = keras.optimizers.LossScaleOptimizer(SAM(keras.optimizers.SGD()))
        self.assertTrue(requires_loss_closure(wrapped))

    def test_other_optimizers_train_as_keras_does(self):
        x, y, _ = _data(3)
        model = _model(keras.optimizers.SGD(0.1))  # hooked, but SGD needs no closure
        before = model.get_weights()
        model.fit(x, y, batch_size=N, epochs=1, verbose=0)
        features = np.hstack([x, np.ones((N, 1))]).astype(np.float64)
        theta = np.concatenate([before[0][:, 0], before[1]]).astype(np.float64)
        grad = 2.0 * features.T @ (features @ theta - y[:, 0]) / N
        self.assertAllClose(_flat(model.weights), theta - 0.1 * grad, rtol=1e-5, atol=1e-6)
        self.assertIsNone(current_loss_closure(model.optimizer))

    def test_install_on_an_unbuilt_model_is_idempotent(self):
        x, y, _ = _data(4)
        model = keras.Sequential([keras.layers.Dense(1)])  # built by the first fit
        model.compile(optimizer=Probe(learning_rate=0.0), loss="mse")
        self.assertIs(install_loss_aware_train_step(model), model)
        step = model.train_step
        self.assertIs(install_loss_aware_train_step(model), model)
        self.assertIs(model.train_step, step)
        model.fit(x, y, batch_size=N, epochs=1, verbose=0)
        loss, _, _ = _reference(model, x, y, np.ones(N, "float32"))
        self.assertAllClose(model.optimizer.seen_loss, loss, rtol=1e-5)

    def test_only_the_installed_model_changes(self):
        class_step = keras.Model.__dict__.get("train_step")
        model = _model(Probe(learning_rate=0.0))
        other = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])
        other.compile(optimizer=Probe(learning_rate=0.0), loss="mse")
        self.assertIs(keras.Model.__dict__.get("train_step"), class_step)
        self.assertNotIn("train_step", vars(other))
        self.assertIn("train_step", vars(model))

    def test_install_needs_an_optimizer(self):
        model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `model` must be compiled with an optimizer before the loss-aware "
            r"train step is installed\. Received: model\.optimizer=None\. Call "
            r"`model\.compile\(optimizer=\.\.\., loss=\.\.\.\)` first\.$",
        ):
            install_loss_aware_train_step(model)
