"""The one-cycle momentum schedule drives kerastrain's SGD momentum in `fit` (integration)."""

import keras
import numpy as np
from _schedule_helpers import evaluate
from keras import ops

from kerastrain import optimizers
from kerastrain.schedules import OneCycle, OneCycleMomentum
from kerastrain.testing import reload_model


@keras.saving.register_keras_serializable(package="kerastrain_tests")
def mean_prediction_momentum(y_true, y_pred):
    return ops.mean(y_pred)


def test_one_cycle_rate_and_momentum_in_sgd():
    rate = OneCycle(0.1, total_steps=8, pct_start=0.5)
    momentum = rate.momentum_schedule(base_momentum=0.5, max_momentum=0.9)
    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=optimizers.SGD(learning_rate=rate, momentum=momentum),
                  loss=mean_prediction_momentum)
    model.fit(np.ones((8, 1)), np.zeros((8, 1)), batch_size=1, epochs=1, verbose=0)
    # Keras's momentum update with gradient 1 (d mean(w x) / dw at x = 1):
    # v <- mu_t * v - lr_t;  w <- w + v.
    rates, momenta = evaluate(rate, np.arange(8)), evaluate(momentum, np.arange(8))
    velocity = weight = 0.0
    for lr, mu in zip(rates, momenta):
        velocity = mu * velocity - lr
        weight += velocity
    np.testing.assert_allclose(model.trainable_weights[0].numpy()[0, 0], weight, rtol=1e-5)
    revived = reload_model(model)
    revived_momentum = keras.saving.deserialize_keras_object(
        revived.optimizer.get_config()["momentum"])
    assert isinstance(revived_momentum, OneCycleMomentum)
    assert revived_momentum.get_config() == momentum.get_config()
