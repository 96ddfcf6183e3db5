"""Groups of a search train side by side in threads: their programs must not collide.

`_vectorized._side_by_side` runs two groups' epochs from two threads. On TensorFlow
the programs' graphs have the same node names (one ``tf.function`` per shape, the same
structure), and TensorFlow rewrites some of their sums into per-step temporary
variables named after those nodes, in a container shared by every function call
in flight: two epochs running at once raised ``AlreadyExistsError: Resource
__per_step_0/.../tmp_var`` (seen in a digits search). Here several groups train at
once, over and over, and each must end with exactly the numbers it gets alone.
"""

import threading

import keras
import keras_tuner
import numpy as np
import pytest

from kerastrain.tuning import _group, _members
from kerastrain.tuning._spaces import MLPHyperModel

SEED = 7


def _trainer(hypermodel, members, offset):
    hps = []
    for i in range(members):
        hp = keras_tuner.HyperParameters()
        hypermodel.build(hp)
        j = i + offset
        hp.values.update(layers=1 + j % 3, units_0=32, units_1=16 + 16 * (j % 2), units_2=32,
                         activation=hypermodel.activations[j % len(hypermodel.activations)],
                         optimizer=hypermodel.optimizers[j % len(hypermodel.optimizers)],
                         schedule=hypermodel.schedules[j % len(hypermodel.schedules)],
                         learning_rate=1e-3 * (1 + j), dropout=0.1 * (j % 3), l2=1e-5,
                         batch_norm=j % 2 == 1, batch_size=16)
        hps.append(hp)
    specs = [_members.member_spec(hypermodel, hp) for hp in hps]
    models = []
    for hp in hps:
        keras.utils.set_random_seed(SEED + offset)
        keras.backend.clear_session()
        models.append(hypermodel.build(hp))
    shape = _members.group_shape(hypermodel, 16, members)
    return _group.GroupTrainer(shape, specs, models, hypermodel.decay_steps, SEED + offset)


def _data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return (x[:256], y[:256]), (x[256:320], y[256:320])


def _weights(trainer):
    return [w for i in range(len(trainer.specs))
            for w in trainer.member_model(i, best=False).get_weights()]


@pytest.mark.skipif(keras.config.backend() not in ("jax", "tensorflow"),
                    reason="the MLP program is JAX's and TensorFlow's")
@pytest.mark.slow
def test_groups_training_at_once_in_threads_equal_each_group_alone():
    # the default space's activations, optimizers, schedules, batch norm, 1-3 layers
    hypermodel = MLPHyperModel(input_shape=(64,), num_classes=10, units=(16, 32),
                               batch_sizes=(16,))
    (x, y), validation = _data()
    epochs, groups = 12, 3

    def train(trainer, logs):
        for _ in range(epochs):
            logs.append(trainer.train_epoch())

    alone = []
    for offset in range(groups):
        trainer = _trainer(hypermodel, 6, offset)
        trainer.set_data(x, y, validation)
        logs = []
        train(trainer, logs)
        alone.append((logs, _weights(trainer)))

    trainers = [_trainer(hypermodel, 6, offset) for offset in range(groups)]
    logs = [[] for _ in trainers]
    errors = []

    def run(trainer, logs):
        try:
            train(trainer, logs)
        except Exception as error:  # noqa: BLE001 - reported below, in the main thread
            errors.append(error)

    for trainer in trainers:
        trainer.set_data(x, y, validation)
    threads = [threading.Thread(target=run, args=pair) for pair in zip(trainers, logs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    for (alone_logs, alone_weights), trainer, together in zip(alone, trainers, logs):
        for epoch_alone, epoch_together in zip(alone_logs, together, strict=True):
            for key in epoch_alone:
                np.testing.assert_array_equal(epoch_alone[key], epoch_together[key])
        for a, b in zip(alone_weights, _weights(trainer), strict=True):
            np.testing.assert_array_equal(a, b)
