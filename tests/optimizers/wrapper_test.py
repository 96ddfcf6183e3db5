"""`OptimizerWrapper`: what `Lookahead`, `Monitored` and `SAM` share, tested once for all."""

import re

import keras
import numpy as np
import pytest

from kerastrain import optimizers
from kerastrain.optimizers._wrapping import OptimizerWrapper
from kerastrain.testing import TestCase, reload_model

# name: (factory of the wrapper around ``inner``, shares the inner step counter)
WRAPPERS = {
    "Lookahead": (lambda inner, **kw: optimizers.Lookahead(inner, sync_period=2, **kw), False),
    "Monitored": (lambda inner, **kw: optimizers.Monitored(inner, **kw), True),
    "SAM": (lambda inner, **kw: optimizers.SAM(inner, rho=0.1, **kw), True),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_is_an_optimizer_wrapper(name):
    make, _ = WRAPPERS[name]
    assert isinstance(make(keras.optimizers.SGD()), OptimizerWrapper)


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_rejects_base_optimizer_arguments(name):
    make, _ = WRAPPERS[name]
    message = (f"{name} takes no base-optimizer arguments. Received: ['clipnorm', 'use_ema']. "
               "Set them on the wrapped optimizer. For example: "
               f"{name}(keras.optimizers.SGD(0.1, clipnorm=...)).")
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        make(keras.optimizers.SGD(), use_ema=True, clipnorm=1.0)


@pytest.mark.parametrize("name", ["Monitored", "SAM"])
def test_rejects_a_non_optimizer(name):
    make, _ = WRAPPERS[name]
    with pytest.raises(TypeError, match=r"^Argument `optimizer` must be a "
                       r"keras\.optimizers\.Optimizer instance\. Received: optimizer=0\.1 "
                       r"of type float Pass an optimizer object"):
        make(0.1)


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_forwards_learning_rate_to_the_inner_optimizer(name):
    make, _ = WRAPPERS[name]
    inner = keras.optimizers.SGD(0.5)
    wrapper = make(inner)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wrapper.learning_rate), 0.5)
    wrapper.learning_rate = 0.25
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inner.learning_rate), 0.25)


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_build_and_variables(name):
    make, shares_iterations = WRAPPERS[name]
    inner = keras.optimizers.SGD(0.1, momentum=0.9)
    wrapper = make(inner)
    weights = [keras.Variable(np.ones((2, 3), "float32")), keras.Variable(np.zeros(3, "float32"))]
    wrapper.build(weights)
    assert inner.built
    # The wrapper's own variables first, then every variable of the inner optimizer.
    inner_ids = [id(v) for v in inner.variables]
    assert [id(v) for v in wrapper.variables[-len(inner_ids):]] == inner_ids
    assert (wrapper.iterations is inner.iterations) == shares_iterations
    built = list(wrapper.variables)
    wrapper.build(weights)  # building twice changes nothing
    assert [id(v) for v in wrapper.variables] == [id(v) for v in built]


class WrapperRoundTripTest(TestCase):
    def test_config_round_trip(self):
        for name, (make, _) in sorted(WRAPPERS.items()):
            with self.subTest(name=name):
                wrapper = make(keras.optimizers.Adam(0.01), name=f"my_{name.lower()}")
                revived = self.run_serialization_test(wrapper)
                self.assertIsInstance(revived, type(wrapper))
                self.assertEqual(revived.name, f"my_{name.lower()}")
                self.assertEqual(revived.inner_optimizer.get_config(),
                                 wrapper.inner_optimizer.get_config())

    def test_saved_model_round_trip(self):
        # Lookahead and Monitored train with plain `fit`; SAM's saved-model test,
        # which needs `prepare(model)`, is in sam_test.py.
        x = self.rng.normal(size=(8, 3)).astype("float32")
        y = self.rng.normal(size=(8, 1)).astype("float32")
        for name in ("Lookahead", "Monitored"):
            with self.subTest(name=name):
                make, _ = WRAPPERS[name]
                model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
                model.compile(optimizer=make(keras.optimizers.Adam(0.01)), loss="mse")
                model.fit(x, y, batch_size=4, epochs=1, verbose=0)
                revived = reload_model(model, self.get_temp_dir())
                self.assertIsInstance(revived.optimizer, type(model.optimizer))
                self.assertAllClose(revived.optimizer.variables, model.optimizer.variables)
