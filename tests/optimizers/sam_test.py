"""SAM / ASAM against float64 references written here from the papers' formulas.

Foret et al. 2021, eq. (2) and Algorithm 1: ε = ρ·g/‖g‖, then the base
optimizer steps with ∇L(w + ε). Kwon et al. 2021 (ASAM), eq. (10) with
T_w = |w| + η: ε = ρ·T²g/‖Tg‖. The references are linear least squares in
numpy (exact gradient 2/N·Xᵀ(Xw − y)) and a tanh MLP in float64 PyTorch
autograd with `torch.optim.SGD` as the base step.
"""

import keras
import numpy as np
from optimizer_helpers import fit_full_batch, flat_weights, linear_model

from kerastrain._backend import LossClosure
from kerastrain._backend._train_step import _publish
from kerastrain.optimizers._sam import SAM, prepare
from kerastrain.testing import TestCase, reload_model

N, D = 16, 3
UNPREPARED = (
    r"`SAM` needs the loss of the batch being trained, but it was applied outside "
    r"a train step that provides it \(no weights were changed\)\. Call "
    r"`kerastrain\.optimizers\.prepare\(model\)` once after `model\.compile\(\.\.\.\)` "
    r"\(and after loading a saved model\) and before `model\.fit\(\.\.\.\)`\.$"
)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)).astype("float32"), rng.normal(size=(N, 1)).astype("float32")


_KERAS_TRAINER = next(c for c in keras.Model.__mro__[1:] if "train_step" in vars(c))


class CustomStep(keras.Sequential):
    """A model class with its own train step (the backend trainer's, called directly)."""

    def train_step(self, *args):
        return _KERAS_TRAINER.train_step(self, *args)


def _numpy_gradient(x, y, theta):
    features = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    residual = features @ theta - y[:, 0].astype(np.float64)
    return 2.0 * features.T @ residual / len(x)


def _numpy_sam(x, y, theta, steps, rho, base_step, adaptive=False, eta=0.01):
    """SAM / ASAM over ``steps`` full-batch steps; ``base_step(theta, g, t)``."""
    for t in range(1, steps + 1):
        g = _numpy_gradient(x, y, theta)
        scale = np.abs(theta) + eta if adaptive else np.ones_like(theta)
        epsilon = rho * scale**2 * g / (np.linalg.norm(scale * g) + 1e-12)
        theta = base_step(theta, _numpy_gradient(x, y, theta + epsilon), t)
    return theta


def _numpy_keras_adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """`keras.optimizers.Adam`'s documented update (Kingma & Ba, epsilon-hat form).

    Keras computes βᵗ from β rounded to float32 (1 − 0.999ᵗ is then off by
    1.3e-5 relative at t = 1) and the moment factors 1 − β in Python floats;
    the reference does the same.
    """
    state = {}

    def step(theta, g, t):
        m = beta_1 * state.get("m", 0.0) + (1 - beta_1) * g
        v = beta_2 * state.get("v", 0.0) + (1 - beta_2) * g**2
        state.update(m=m, v=v)
        powers = np.float32(beta_1) ** np.float32(t), np.float32(beta_2) ** np.float32(t)
        alpha = learning_rate * np.sqrt(1 - float(powers[1])) / (1 - float(powers[0]))
        return theta - alpha * m / (np.sqrt(v) + epsilon)

    return step


class SAMTest(TestCase):
    def test_matches_reference(self):
        x, y = _data()
        model = linear_model(D, SAM(keras.optimizers.SGD(0.1), rho=0.05))
        theta0 = flat_weights(model)
        fit_full_batch(model, x, y, steps=5)
        expected = _numpy_sam(x, y, theta0, 5, 0.05, lambda w, g, t: w - 0.1 * g)
        self.assertAllClose(flat_weights(model), expected, rtol=1e-5, atol=1e-6)

    def test_adaptive_with_adam_matches_reference(self):
        x, y = _data(1)
        y = y + 5.0  # far from the minimum: Adam's m/√v stays well conditioned in float32
        model = linear_model(D, SAM(keras.optimizers.Adam(0.05), rho=0.5, adaptive=True))
        theta0 = flat_weights(model)
        fit_full_batch(model, x, y, steps=6)
        expected = _numpy_sam(x, y, theta0, 6, 0.5, _numpy_keras_adam(0.05), adaptive=True)
        self.assertAllClose(flat_weights(model), expected, rtol=1e-5, atol=1e-6)

    def test_without_jit_matches_reference(self):
        x, y = _data(2)
        model = linear_model(D, SAM(keras.optimizers.SGD(0.1), rho=0.1, adaptive=True, eta=0.0),
                        jit_compile=False)
        model.run_eagerly = True
        theta0 = flat_weights(model)
        fit_full_batch(model, x, y, steps=3)
        expected = _numpy_sam(x, y, theta0, 3, 0.1, lambda w, g, t: w - 0.1 * g,
                              adaptive=True, eta=0.0)
        self.assertAllClose(flat_weights(model), expected, rtol=1e-5, atol=1e-6)

    def test_mlp_matches_torch_sam(self):
        import torch
        x, y = _data(3)
        model = keras.Sequential([
            keras.Input((D,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1),
        ])
        model.compile(optimizer=SAM(keras.optimizers.SGD(0.05, momentum=0.9), rho=0.2),
                      loss="mse")
        prepare(model)
        params = [torch.tensor(keras.ops.convert_to_numpy(w), dtype=torch.float64,
                               requires_grad=True) for w in model.weights]
        fit_full_batch(model, x, y, steps=4)
        xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)

        def loss_and_grads():
            hidden = torch.tanh(xt @ params[0] + params[1])
            loss = torch.mean((hidden @ params[2] + params[3] - yt) ** 2)
            return torch.autograd.grad(loss, params)

        # Keras's momentum (v = μv − ηg; w += v) equals torch's for a constant rate.
        base = torch.optim.SGD(params, lr=0.05, momentum=0.9)
        for _ in range(4):
            grads = loss_and_grads()
            norm = torch.sqrt(sum((g**2).sum() for g in grads))
            with torch.no_grad():
                epsilons = [0.2 * g / (norm + 1e-12) for g in grads]
                for p, e in zip(params, epsilons):
                    p.add_(e)
            perturbed = loss_and_grads()
            with torch.no_grad():
                for p, e, g in zip(params, epsilons, perturbed):
                    p.sub_(e)
                    p.grad = g
            base.step()
        self.assertAllClose(model.weights, [p.detach().numpy() for p in params],
                            rtol=1e-5, atol=1e-6)

    def test_static_loss_scale_factor_of_wrapped_optimizer(self):
        x, y = _data(4)
        plain = linear_model(D, SAM(keras.optimizers.SGD(0.1)))
        scaled = linear_model(D, SAM(keras.optimizers.SGD(0.1, loss_scale_factor=8.0)))
        scaled.set_weights(plain.get_weights())
        fit_full_batch(plain, x, y, steps=3)
        fit_full_batch(scaled, x, y, steps=3)
        self.assertAllClose(scaled.weights, plain.weights, rtol=1e-5, atol=1e-6)

    def test_learning_rate_and_iterations_are_the_wrapped_optimizers(self):
        inner = keras.optimizers.SGD(0.1)
        optimizer = SAM(inner)
        optimizer.learning_rate = 0.25
        self.assertAllClose(inner.learning_rate, 0.25)
        x, y = _data()
        fit_full_batch(linear_model(D, optimizer), x, y, steps=2)
        self.assertEqual(int(keras.ops.convert_to_numpy(optimizer.iterations)), 2)
        self.assertIs(optimizer.iterations, inner.iterations)

    def test_unprepared_apply_raises_before_changing_weights(self):
        model = linear_model(D, keras.optimizers.SGD())
        optimizer = SAM(keras.optimizers.SGD(0.1))
        before = model.get_weights()
        with self.assertRaisesRegex(ValueError, "^" + UNPREPARED):
            optimizer.apply([keras.ops.ones((D, 1)), keras.ops.ones((1,))],
                            model.trainable_variables)
        self.assertAllClose(model.get_weights(), before, rtol=0, atol=0)

    def test_unprepared_fit_raises(self):
        x, y = _data(7)
        model = linear_model(D, SAM(keras.optimizers.SGD(0.1)), prepare=False)
        before = model.get_weights()
        with self.assertRaisesRegex(ValueError, "^" + UNPREPARED):
            fit_full_batch(model, x, y, steps=1)
        if keras.config.backend() != "jax":  # Keras's JAX fit drops the weights on any error
            self.assertAllClose(model.get_weights(), before, rtol=0, atol=0)

    def test_custom_train_step_needs_prepare(self):
        x, y = _data(6)
        model = linear_model(D, SAM(keras.optimizers.SGD(0.1)), model_class=CustomStep,
                             prepare=False)
        if keras.config.backend() != "jax":  # Keras's JAX fit drops the weights on any error
            with self.assertRaisesRegex(ValueError, "^" + UNPREPARED):
                fit_full_batch(model, x, y, steps=1)
        self.assertIs(prepare(model), model)
        theta0 = flat_weights(model)
        fit_full_batch(model, x, y, steps=2)
        expected = _numpy_sam(x, y, theta0, 2, 0.05, lambda w, g, t: w - 0.1 * g)
        self.assertAllClose(flat_weights(model), expected, rtol=1e-5, atol=1e-6)

    def test_serialization(self):
        optimizer = SAM(keras.optimizers.Adam(0.01, beta_1=0.8), rho=0.3, adaptive=True,
                        eta=0.02, epsilon=1e-10, name="sharp")
        revived = self.run_serialization_test(optimizer)
        self.assertIsInstance(revived.inner_optimizer, keras.optimizers.Adam)
        self.assertEqual(revived.inner_optimizer.get_config(),
                         optimizer.inner_optimizer.get_config())

    def test_saved_model_round_trip_continues_identically(self):
        x, y = _data(5)
        model = linear_model(D, SAM(keras.optimizers.SGD(0.05, momentum=0.9), rho=0.1))
        fit_full_batch(model, x, y, steps=2)
        revived = prepare(reload_model(model, self.get_temp_dir()))
        self.assertIsInstance(revived.optimizer, SAM)
        self.assertEqual(revived.optimizer.get_config(), model.optimizer.get_config())
        self.assertAllClose(revived.optimizer.variables, model.optimizer.variables, rtol=0, atol=0)
        fit_full_batch(model, x, y, steps=2)
        fit_full_batch(revived, x, y, steps=2)
        self.assertAllClose(revived.weights, model.weights, rtol=1e-6, atol=1e-7)


class SAMArgumentTest(TestCase):
    def test_rho_must_be_positive(self):
        for rho in (0, -0.1):
            with self.assertRaisesRegex(
                ValueError, rf"^Argument `rho` must be > 0\. Received: rho={rho}$"
            ):
                SAM(keras.optimizers.SGD(), rho=rho)

    def test_rho_must_be_a_number(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `rho` must be a number \(int or float\)\. Received: rho='0.1' of type str$",
        ):
            SAM(keras.optimizers.SGD(), rho="0.1")

    def test_optimizer_must_be_an_optimizer(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `optimizer` must be a keras\.optimizers\.Optimizer instance\. "
            r"Received: optimizer='sgd' of type str Pass an optimizer object, "
            r"e\.g\. SAM\(keras\.optimizers\.SGD\(0\.1\)\)\.$",
        ):
            SAM("sgd")

    def test_optimizer_must_not_be_a_loss_scale_optimizer(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `optimizer` must not be a LossScaleOptimizer\. Received: optimizer=.* "
            r"Wrap the other way around, LossScaleOptimizer\(SAM\(\.\.\.\)\), which is what "
            r"`compile` does under the mixed_float16 policy\.$",
        ):
            SAM(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()))

    def test_adaptive_must_be_a_bool(self):
        with self.assertRaisesRegex(
            TypeError, r"^Argument `adaptive` must be a bool\. Received: adaptive=1 of type int$"
        ):
            SAM(keras.optimizers.SGD(), adaptive=1)

    def test_eta_must_not_be_negative(self):
        with self.assertRaisesRegex(
            ValueError, r"^Argument `eta` must be >= 0\. Received: eta=-0\.01$"
        ):
            SAM(keras.optimizers.SGD(), adaptive=True, eta=-0.01)

    def test_epsilon_must_be_positive(self):
        with self.assertRaisesRegex(
            ValueError, r"^Argument `epsilon` must be > 0\. Received: epsilon=0$"
        ):
            SAM(keras.optimizers.SGD(), epsilon=0)

    def test_base_optimizer_arguments_belong_to_the_wrapped_optimizer(self):
        # The one wording of every `OptimizerWrapper` (Lookahead, Monitored, SAM).
        with self.assertRaisesRegex(
            TypeError,
            r"^SAM takes no base-optimizer arguments\. Received: \['clipnorm'\]\. "
            r"Set them on the wrapped optimizer\. For example: "
            r"SAM\(keras\.optimizers\.SGD\(0\.1, clipnorm=\.\.\.\)\)\.$",
        ):
            SAM(keras.optimizers.SGD(), clipnorm=1.0)

    def test_prepare_needs_a_model(self):
        with self.assertRaisesRegex(
            TypeError, r"^Argument `model` must be a keras\.Model\. Received: model=None of type"
        ):
            prepare(None)

    def _published(self, optimizer, model, variables):
        closure = LossClosure(lambda *args: 0.0, None, None, variables=variables)
        _publish(optimizer, closure)
        self.addCleanup(_publish, optimizer, None)

    def test_apply_unbuilt_without_variables(self):
        model = linear_model(D, keras.optimizers.SGD())
        optimizer = SAM(keras.optimizers.SGD())
        self._published(optimizer, model, model.trainable_variables)
        with self.assertRaisesRegex(
            ValueError,
            r"^`SAM\.apply` needs `trainable_variables` on its first call \(the optimizer is "
            r"not built\)\. Received: trainable_variables=None$",
        ):
            optimizer.apply([keras.ops.zeros((D, 1)), keras.ops.zeros((1,))])

    def test_closure_without_model_variables(self):
        model = linear_model(D, keras.optimizers.SGD())
        optimizer = SAM(keras.optimizers.SGD())
        self._published(optimizer, model, None)
        with self.assertRaisesRegex(
            ValueError,
            r"^The loss closure of this train step does not list the model's trainable "
            r"variables, which `SAM` needs\. Call `kerastrain\.optimizers\.prepare\(model\)`",
        ):
            optimizer.apply([keras.ops.zeros((D, 1)), keras.ops.zeros((1,))],
                            model.trainable_variables)

    def test_variable_outside_the_model(self):
        model = linear_model(D, keras.optimizers.SGD())
        stray = keras.Variable(np.zeros((2,), "float32"), name="stray")
        optimizer = SAM(keras.optimizers.SGD())
        self._published(optimizer, model, model.trainable_variables)
        with self.assertRaisesRegex(
            ValueError,
            r"^The optimizer updates the variable 'stray', which is not a trainable variable "
            r"of the model being trained, so the loss cannot be differentiated with respect "
            r"to it\. Build the optimizer on `model\.trainable_variables` \(what `model\.fit` "
            r"does\)\.$",
        ):
            optimizer.apply([keras.ops.ones((2,))], [stray])
