"""Vectorized trials of a user's ``build(hp)``: each member equals its own ``model.fit``.

The members are ordinary compiled Keras models; the group runs Keras's own
train step mapped over them. The reference is the sequential path: the same
model built after the same seeding, trained by ``model.fit`` (its shuffling,
its dropout masks, its last smaller batch). JAX only (the program is JAX's);
`vectorized_fallback_test.py` covers the one-line fallback elsewhere.
"""

import keras
import numpy as np
import pytest

from kerastrain import optimizers
from kerastrain._backend import _vectorized_keras as program
from kerastrain.tuning._keras_group import KerasGroupTrainer
from kerastrain.tuning._tuner import create_tuner, search

pytestmark = pytest.mark.skipif(
    keras.config.backend() != "jax",
    reason="the vectorized program is JAX's; other backends: vectorized_fallback_test.py")

SEED = 11
BATCH = 64  # 300 training rows: 4 full batches and a last one of 44


def _digits(n_train=300, n_val=100):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_val], y[n_train:n_train + n_val])


def _model(learning_rate, dropout=0.2, units=32, optimizer="adam"):
    inputs = keras.Input((64,))
    # No bias before batch norm: its gradient is zero in exact arithmetic, so Adam
    # would take full-size steps on float noise in either path.
    hidden = keras.layers.Dense(units, activation="relu", use_bias=False)(inputs)
    hidden = keras.layers.BatchNormalization()(hidden)
    hidden = keras.layers.Dropout(dropout)(hidden)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    opt = (keras.optimizers.Adam(learning_rate) if optimizer == "adam"
           else optimizers.SGD(learning_rate, momentum=0.9))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _build(make):
    keras.backend.clear_session(free_memory=False)  # as the sequential tuner
    keras.utils.set_random_seed(SEED)
    return make()


def _relative(reference, value):
    return float(np.max(np.abs(reference - value)) / (np.max(np.abs(reference)) + 1e-12))


@pytest.mark.parametrize("optimizer", ["adam", "kerastrain_sgd"])
def test_members_equal_their_own_model_fit(optimizer):
    (x, y), validation = _digits()
    rates = [1e-3, 3e-3, 1e-2]
    makes = [lambda r=r: _model(r, optimizer=optimizer) for r in rates]
    epochs = 2
    models, orders = [], []
    for make in makes:
        models.append(_build(make))
        orders.append(np.random.get_state())
        KerasGroupTrainer.prepare(models[-1], x, y, BATCH)
    signatures = {program.signature(m, x[:BATCH], y[:BATCH]) for m in models}
    assert len(signatures) == 1  # a float learning rate is a variable: one program
    trainer = KerasGroupTrainer(models, orders, BATCH)
    trainer.set_data(x, y, validation)
    history = [trainer.train_epoch() for _ in range(epochs)]
    assert set(history[0]) == set(trainer.log_names())
    for index, make in enumerate(makes):
        reference = _build(make)
        fitted = reference.fit(x, y, batch_size=BATCH, epochs=epochs, validation_data=validation,
                               verbose=0).history
        member = trainer.member_model(index, best=False)
        for want, got in zip(reference.get_weights(), member.get_weights()):
            assert _relative(want, got) < 1e-5, (optimizer, rates[index])
        for key, values in fitted.items():
            np.testing.assert_allclose([h[key][index] for h in history], values, rtol=1e-5,
                                       atol=1e-6, err_msg=f"{key}, learning rate {rates[index]}")


def test_members_share_a_program_only_when_their_steps_differ_in_variables_only():
    (x, y), _ = _digits()

    def signature(make):
        model = _build(make)
        KerasGroupTrainer.prepare(model, x, y, BATCH)
        return program.signature(model, x[:BATCH], y[:BATCH])

    base = signature(lambda: _model(1e-3))
    assert signature(lambda: _model(5e-2)) == base  # the learning rate: a variable
    assert signature(lambda: _model(1e-3, dropout=0.3)) != base  # a Python constant
    assert signature(lambda: _model(1e-3, units=16)) != base  # shapes


def _build_fn(hp):
    rate = hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")
    dropout = hp.Choice("dropout", [0.0, 0.25])
    return _model(rate, dropout=dropout)


def _search(tmp_path, name, vectorize, cv=0, trials=5):
    (x, y), validation = _digits()
    tuner = create_tuner("random", _build_fn, max_trials=trials, max_epochs=2, seed=SEED,
                         cv=cv, directory=str(tmp_path / name), tensorboard=False,
                         vectorize=vectorize)
    lines = []
    if cv:
        search(tuner, np.concatenate([x, validation[0]]), np.concatenate([y, validation[1]]),
               batch_size=BATCH, report=lines.append)
    else:
        search(tuner, x, y, validation_data=validation, batch_size=BATCH, report=lines.append)
    assert lines == []
    return tuner


def _scores(tuner, key="score"):
    trials = tuner.oracle.trials.values()
    if key == "score":
        return {t.trial_id: t.score for t in trials}
    return {t.trial_id: t.metrics.get_best_value(key) for t in trials}


@pytest.mark.slow
def test_a_vectorized_search_of_a_build_function_finds_what_the_sequential_one_finds(tmp_path):
    vectorized = _search(tmp_path, "vectorized", "auto")
    sequential = _search(tmp_path, "sequential", False)
    assert vectorized.vectorized_groups  # it did vectorize: one group per dropout value
    assert len(vectorized.vectorized_groups) <= 2
    assert sum(g["members"] for g in vectorized.vectorized_groups) == 5
    want, got = _scores(sequential), _scores(vectorized)
    assert set(want) == set(got) and all(v is not None for v in got.values())
    for trial_id, value in want.items():
        assert got[trial_id] == pytest.approx(value, rel=1e-5, abs=1e-6), trial_id
    best = vectorized.get_best_models(1)[0]  # its best-epoch checkpoint loads
    reference = sequential.get_best_models(1)[0]
    # 1e-4, not the 1e-5 of the test above: here a group of 4 members runs XLA's batched
    # matmul, whose float32 sums are ordered unlike a single model's matmul, at learning
    # rates up to 0.027 (measured: at most 3.3e-5 after 2 epochs; the singleton group
    # (dropout 0.25) runs the single kernel and matches bit for bit).
    for want_weight, got_weight in zip(reference.get_weights(), best.get_weights()):
        assert _relative(want_weight, got_weight) < 1e-4


@pytest.mark.slow
def test_cross_validation_folds_of_a_build_function_are_members(tmp_path):
    vectorized = _search(tmp_path, "vectorized", "auto", cv=2, trials=2)
    sequential = _search(tmp_path, "sequential", False, cv=2, trials=2)
    assert sum(g["members"] for g in vectorized.vectorized_groups) == 4  # 2 trials x 2 folds
    for key in ("score", "score_std"):
        want, got = _scores(sequential, key), _scores(vectorized, key)
        for trial_id, value in want.items():
            assert got[trial_id] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, trial_id)
