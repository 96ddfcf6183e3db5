"""Vectorized trials: a member of a group equals the same trial trained alone by model.fit.

The reference is the sequential path itself: the member's model built as the
sequential tuner builds it (same seed) and trained with ``model.fit`` (its own
shuffling, its own dropout masks). These tests run on JAX and TensorFlow (the
MLP program is both backends'); `vectorized_fallback_test.py` covers the
one-line fallback on the other backends.
"""

import dataclasses
import os

import keras
import keras_tuner
import numpy as np
import pytest
from _tuning_helpers import results_rows

from kerastrain.tuning import _group, _members, _results
from kerastrain.tuning._pruning import MedianStoppingPruner, median_stopping_rule
from kerastrain.tuning._spaces import MLPHyperModel
from kerastrain.tuning._tuner import create_tuner, search

# The MLP program runs on TensorFlow too (`_vectorized_mlp_tf`): the tests marked so.
on_jax_and_tensorflow = pytest.mark.skipif(
    keras.config.backend() not in ("jax", "tensorflow"),
    reason="the MLP program is JAX's and TensorFlow's; other backends: "
           "vectorized_fallback_test.py")
# On JAX a member sees its one-at-a-time trial's data order (model.fit shuffles with NumPy),
# so a vectorized search's scores equal the sequential search's; TensorFlow's model.fit
# shuffles inside tf.data (there the member equivalence test replays the group's order).
SAME_ORDER_AS_FIT = keras.config.backend() == "jax"

SEED = 1337


def _digits(n_train=320, n_val=96):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype(np.float32)
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_val], y[n_train:n_train + n_val])


def _space(**overrides):
    options = dict(input_shape=(64,), num_classes=10, layers=(1, 3), units=(8, 16, 24),
                   activations=("relu", "leaky_relu", "elu", "tanh", "sigmoid", "maxout"),
                   optimizers=("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop",
                               "adam", "adamw"),
                   schedules=("constant", "exponential", "inverse_time", "cosine", "step"),
                   l2=(1e-6, 1e-3), dropout=(0.0, 0.3), batch_sizes=(32,), decay_steps=4)
    options.update(overrides)
    return MLPHyperModel(**options)


def _hp(hypermodel, **values):
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)  # registers the space (units_i conditional on layers)
    hp.values.update(values)
    return hp


# Every activation, optimizer preset and schedule; depths 1-3 and widths padded to 24;
# batch norm on and off; dropout 0 and > 0.
MEMBERS = [
    dict(layers=2, units_0=24, units_1=16, activation="relu", optimizer="adam",
         learning_rate=3e-3, schedule="constant", l2=1e-4, dropout=0.2, batch_norm=True),
    dict(layers=1, units_0=8, activation="maxout", optimizer="momentum", learning_rate=1e-2,
         schedule="cosine", l2=1e-5, dropout=0.0, batch_norm=False),
    dict(layers=3, units_0=16, units_1=24, units_2=8, activation="tanh", optimizer="rmsprop",
         learning_rate=2e-3, schedule="exponential", l2=1e-3, dropout=0.1, batch_norm=False),
    dict(layers=2, units_0=8, units_1=8, activation="elu", optimizer="adamw",
         learning_rate=5e-3, schedule="inverse_time", l2=1e-6, dropout=0.25, batch_norm=True),
    dict(layers=1, units_0=16, activation="sigmoid", optimizer="adagrad", learning_rate=2e-2,
         schedule="step", l2=1e-4, dropout=0.05, batch_norm=True),
    dict(layers=2, units_0=24, units_1=24, activation="leaky_relu", optimizer="adadelta",
         learning_rate=1.0, schedule="constant", l2=1e-4, dropout=0.0, batch_norm=False),
    dict(layers=1, units_0=24, activation="relu", optimizer="nesterov", learning_rate=1e-2,
         schedule="step", l2=1e-4, dropout=0.3, batch_norm=False),
    dict(layers=2, units_0=16, units_1=8, activation="maxout", optimizer="sgd",
         learning_rate=3e-2, schedule="exponential", l2=1e-4, dropout=0.1, batch_norm=True),
]


# Largest weight difference, relative to the weight's largest magnitude, after each of
# the epochs: the 1e-5. Adam (and AdamW) divides each element's step by its own
# gradient scale, so where a gradient is a near-cancelling sum (a batch-norm beta under
# dropout) float32 summation order becomes a visible step difference: Keras's own
# model.fit, jitted against run eagerly, differs by 6.9e-5 on one beta element of the first
# member below after one epoch (the same member with SGD: 3e-7). On another CPU (a newer
# machine, 2026-12-03) jitted and eager agreed on it (3e-7) while the group differed by
# 4.5e-5, and model.fit itself moved it by 1.8e-5-6.4e-5 when half of the inputs moved by
# one float32 ulp (every other weight: < 1e-6). For Adam members the bound is therefore
# NOISE_FACTOR times the larger of two measures of that weight's float32 noise, where that
# is above 1e-5: Keras's own jitted-vs-eager difference, and its difference after training
# on inputs one ulp away (`_ulp_away`).
WEIGHT_TOLERANCE = 1e-5
NOISE_FACTOR = 3.0


def _ulp_away(x):
    """``x`` with half of its elements (a fixed random half) one float32 ulp larger."""
    half = np.random.default_rng(SEED).random(x.shape) < 0.5
    return np.where(half, np.nextafter(x, np.float32(np.inf)), x).astype(np.float32)


def _fit_snapshots(model, x, y, validation, epochs, **compile_options):
    """``model.fit``'s history and the model's weights after each epoch.

    On JAX ``model.fit`` shuffles with NumPy's global generator, which the group
    reproduces; TensorFlow's ``fit`` shuffles inside ``tf.data``, so there the reference
    is ``model.fit`` of each epoch's rows in the group's order (``shuffle=False``).
    """
    if compile_options:
        model.compile(optimizer=model.optimizer, loss=model.loss,
                      metrics=["accuracy"], **compile_options)
    snapshots = []
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    if keras.config.backend() == "jax":
        history = model.fit(x, y, batch_size=32, epochs=epochs, validation_data=validation,
                            verbose=0, callbacks=[snapshot]).history
        return history, snapshots
    orders = np.random.RandomState(SEED)  # `GroupTrainer`'s epoch orders
    orders.permutation(len(x))
    history = {}
    for _ in range(epochs):
        order = orders.permutation(len(x))
        logs = model.fit(x[order], y[order], batch_size=32, epochs=1, shuffle=False,
                         validation_data=validation, verbose=0, callbacks=[snapshot]).history
        for key, values in logs.items():
            history.setdefault(key, []).extend(values)
    return history, snapshots


def _build(hypermodel, hp):
    keras.utils.set_random_seed(SEED)  # as the sequential tuner does before each build
    keras.backend.clear_session()
    return hypermodel.build(hp)


def _relative(reference, value):
    return float(np.max(np.abs(reference - value)) / (np.max(np.abs(reference)) + 1e-12))


@on_jax_and_tensorflow
@pytest.mark.slow
def test_members_equal_the_same_trials_trained_alone_by_model_fit():
    hypermodel = _space()
    (x, y), validation = _digits()
    hps = [_hp(hypermodel, batch_size=32, **values) for values in MEMBERS]
    specs = [_members.member_spec(hypermodel, hp) for hp in hps]
    epochs = 2
    logs = {}
    programs = []
    for maxout in (False, True):  # a program without maxout, one of maxout members only
        index = [i for i, s in enumerate(specs) if (s.activation == "maxout") == maxout]
        programs.append((_members.group_shape(hypermodel, 32, len(index) + 1, maxout=maxout),
                         index))
    # Every activation in one program whose columns are its width (24): a maxout member
    # of <= 12 units has its two pieces in the two halves (`_buckets` forms such programs).
    index = [i for i, s in enumerate(specs) if s.activation != "maxout" or max(s.units) <= 12]
    assert any(specs[i].activation == "maxout" for i in index)
    shape = _members.group_shape(hypermodel, 32, len(index))
    programs.append((dataclasses.replace(shape, columns=shape.width), index))
    for program, (shape, index) in enumerate(programs):
        models = [_build(hypermodel, hps[i]) for i in index]
        trainer = _group.GroupTrainer(shape, [specs[i] for i in index], models,
                                      hypermodel.decay_steps, SEED)
        for position, i in enumerate(index):  # epoch 0: the member's own initial weights
            initial = _build(hypermodel, hps[i]).get_weights()
            after = trainer.member_model(position, best=False).get_weights()
            assert all(np.array_equal(a, b) for a, b in zip(initial, after))
        trainer.set_data(x, y, validation)
        history, weights = [], []
        for _ in range(epochs):
            history.append(trainer.train_epoch())
            weights.append([trainer.member_model(position, best=False).get_weights()
                            for position in range(len(index))])
        for position, i in enumerate(index):
            logs[program, i] = ({k: [h[k][position] for h in history] for k in history[0]},
                                [epoch[position] for epoch in weights])
    for i, hp in enumerate(hps):
        reference = _build(hypermodel, hp)
        fitted, snapshots = _fit_snapshots(reference, x, y, validation, epochs)
        tolerances = [[WEIGHT_TOLERANCE] * len(weights) for weights in snapshots]
        if MEMBERS[i]["optimizer"] in ("adam", "adamw"):
            _, eager = _fit_snapshots(_build(hypermodel, hp), x, y, validation, epochs,
                                      run_eagerly=True)
            _, nudged = _fit_snapshots(_build(hypermodel, hp), _ulp_away(x), y, validation,
                                       epochs)
            tolerances = [[max(WEIGHT_TOLERANCE, NOISE_FACTOR * _relative(a, b),
                               NOISE_FACTOR * _relative(a, c))
                           for a, b, c in zip(jitted, run, moved)]
                          for jitted, run, moved in zip(snapshots, eager, nudged)]
        for program in range(len(programs)):
            if (program, i) not in logs:
                continue
            member_logs, member_weights = logs[program, i]
            for epoch in range(epochs):
                for reference_weight, weight, tolerance in zip(
                        snapshots[epoch], member_weights[epoch], tolerances[epoch]):
                    assert _relative(reference_weight, weight) < tolerance, \
                        (program, epoch, tolerance, MEMBERS[i])
            for key, values in fitted.items():
                np.testing.assert_allclose(member_logs[key], values, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{key} of {MEMBERS[i]} in program {program}")


def _tuner(directory, hypermodel, vectorize, **options):
    options.setdefault("max_trials", 2)
    return create_tuner(options.pop("tuner", "grid"), hypermodel, max_epochs=options.pop(
        "max_epochs", 2), directory=str(directory), tensorboard=options.pop("tensorboard", False),
        vectorize=vectorize, **options)


@on_jax_and_tensorflow
@pytest.mark.slow
def test_nan_member_fails_alone_and_the_others_match_the_sequential_search(tmp_path):
    # Grid over two learning rates: 1e6 with L2 makes SGD's weights overflow (NaN loss).
    hypermodel = _space(layers=(1, 1), units=(8,), activations=("relu",), optimizers=("sgd",),
                        schedules=("constant",), learning_rate=(1e-2, 1e6),
                        learning_rate_step=1e8, l2=(1e-3, 1e-3), dropout=(0.0, 0.0),
                        batch_norm=(False,))
    (x, y), validation = _digits()
    results = {}
    for vectorize in (2, False):
        tuner = _tuner(tmp_path / str(vectorize), hypermodel, vectorize, tensorboard=True)
        search(tuner, x, y, validation_data=validation)
        results[vectorize] = (tuner, results_rows(tuner))
    tuner, rows = results[2]
    assert tuner.vectorize_members == 2
    statuses = {row["learning_rate"]: row["status"] for row in rows.values()}
    assert statuses == {1e-2: "COMPLETED", 1e6: "FAILED"}
    failed = next(t for t in tuner.oracle.trials.values() if t.status == "FAILED")
    assert failed.message.startswith("NonFiniteLossError: training loss became ")
    _, sequential = results[False]
    for trial_id, row in rows.items():
        assert row["status"] == sequential[trial_id]["status"]
        if row["status"] == "COMPLETED":
            if SAME_ORDER_AS_FIT:
                assert row["score"] == pytest.approx(sequential[trial_id]["score"], rel=1e-6)
            assert row["epochs"] == sequential[trial_id]["epochs"] == 2
            # its best-epoch checkpoint reloads into the model KerasTuner rebuilds
            model = tuner.get_best_models(1)[0]
            accuracy = model.evaluate(*validation, verbose=0, return_dict=True)["accuracy"]
            assert accuracy == pytest.approx(row["score"], abs=1e-6)
            # its TensorBoard run holds the per-epoch curves
            run = tmp_path / "2" / "search" / "tensorboard" / f"trial_{trial_id}"
            assert os.listdir(run / "validation") and os.listdir(run / "train")


@on_jax_and_tensorflow
@pytest.mark.slow
def test_pruning_stops_members_by_the_median_rule_of_trials_ended_before(tmp_path):
    hypermodel = _space(layers=(1, 1), units=(8,), activations=("relu",),
                        optimizers=("sgd",), schedules=("constant",),
                        learning_rate=(1e-4, 1e-1), l2=(0.0, 0.0), dropout=(0.0, 0.0),
                        batch_norm=(False,))
    (x, y), validation = _digits()
    tuner = _tuner(tmp_path, hypermodel, 2, tuner="random", max_trials=8, max_epochs=4,
                   pruner=MedianStoppingPruner(min_trials=2, warmup_epochs=1))
    search(tuner, x, y, validation_data=validation)
    oracle = tuner.oracle
    records = {tid: _results.read_curve(os.path.join(tuner.project_dir, f"trial_{tid}"))
               for tid in oracle.trials}
    pruned = [tid for tid, record in records.items() if record["pruned"]]
    assert pruned, "a search with learning rates over three decades prunes some trial"
    for trial_id in pruned:
        ended_before = oracle.end_order[:oracle.end_order.index(trial_id)]
        completed = [records[t]["curve"] for t in ended_before
                     if not records[t]["pruned"] and not records[t]["failed"]]
        curve = records[trial_id]["curve"]
        assert len(curve) < 4
        assert median_stopping_rule(curve, completed, "max", 2, 1)
    assert all(len(records[t]["curve"]) == 4 for t in oracle.trials if t not in pruned)


def _read_rows(path):
    import csv

    if not os.path.exists(path):
        return []
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@on_jax_and_tensorflow
@pytest.mark.slow
def test_killed_vectorized_search_resumes_only_its_unfinished_members(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from _tuning_helpers import cli, tiny_config, write_config, write_npz

    # Groups of 2 trials; many cheap epochs, so the kill lands inside the second group.
    config = tiny_config(str(tmp_path / "out"), write_npz(str(tmp_path)),
                         search={"max_trials": 6, "max_epochs": 60, "vectorize": 2})
    path = write_config(str(tmp_path / "tune.toml"), config)
    results = str(tmp_path / "out" / "search" / "results.csv")
    process = subprocess.Popen(
        [sys.executable, "-m", "kerastrain.cli", "tune", path, "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=dict(os.environ, KERAS_BACKEND=keras.config.backend()))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if sum(r["status"] == "COMPLETED" for r in _read_rows(results)) >= 2:
                break
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    before = {r["trial_id"]: r for r in _read_rows(results) if r["status"] == "COMPLETED"}
    assert 2 <= len(before) < 6, "the kill must land between the first and the last group"

    resumed = cli("tune", path, "--quiet", timeout=300,
                  env={"KERAS_BACKEND": keras.config.backend()})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _read_rows(results)
    assert sorted(r["trial_id"] for r in after) == [str(i) for i in range(6)]
    assert all(r["status"] == "COMPLETED" for r in after)
    for row in after:  # finished members keep their results exactly (same row, same seconds)
        if row["trial_id"] in before:
            assert row == before[row["trial_id"]]


@on_jax_and_tensorflow
@pytest.mark.slow
def test_hyperband_rounds_run_as_groups_and_promoted_members_continue(tmp_path):
    hypermodel = _space(layers=(1, 1), units=(8, 16), activations=("relu", "tanh"),
                        optimizers=("adam",), schedules=("constant",), l2=(0.0, 0.0),
                        dropout=(0.0, 0.0), batch_norm=(False,))
    (x, y), validation = _digits()
    tuner = _tuner(tmp_path, hypermodel, "auto", tuner="hyperband", max_trials=20,
                   max_epochs=4)
    search(tuner, x, y, validation_data=validation)
    assert tuner.vectorize_members > 1
    trials = list(tuner.oracle.trials.values())
    promoted = [t for t in trials if t.hyperparameters.values.get("tuner/trial_id")]
    assert promoted, "Hyperband promotes the best trials of a round"
    assert all(t.status == "COMPLETED" for t in trials)
    assert any(len(group_members) > 1 for group_members in
               [g for g in tuner.vectorized_groups if g["members"] > 1])
    best = tuner.get_best_models(1)[0]  # reloads from the member's best-epoch checkpoint
    accuracy = best.evaluate(*validation, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(tuner.oracle.get_best_trials(1)[0].score, abs=1e-6)


@on_jax_and_tensorflow
@pytest.mark.slow
def test_cross_validation_folds_as_members_equal_the_sequential_folds(tmp_path):
    hypermodel = _space(layers=(1, 2), units=(8, 16), activations=("relu", "maxout"),
                        optimizers=("adam", "momentum"), schedules=("constant", "cosine"),
                        dropout=(0.0, 0.2))
    (x, y), _ = _digits(n_train=301)  # folds of 201 and 200 training rows: two groups
    results = {}
    for vectorize in ("auto", False):
        tuner = _tuner(tmp_path / str(vectorize), hypermodel, vectorize, tuner="random",
                       max_trials=3, cv=3)
        search(tuner, x, y)
        results[vectorize] = (tuner, results_rows(tuner))
    tuner, rows = results["auto"]
    assert tuner.vectorize_members >= 9  # 3 trials x 3 folds at once
    assert {g["members"] for g in tuner.vectorized_groups} != {1}
    _, sequential = results[False]
    assert set(rows) == set(sequential)
    for trial_id, row in rows.items():
        for column in ("score", "score_std") if SAME_ORDER_AS_FIT else ():
            assert row[column] == pytest.approx(sequential[trial_id][column], rel=1e-5,
                                                abs=1e-6), (trial_id, column)
        assert row["epochs"] == sequential[trial_id]["epochs"] == 3 * 2


@on_jax_and_tensorflow
def test_a_group_that_does_not_fit_in_memory_is_halved_and_said_so(tmp_path, monkeypatch):
    real = _group.GroupTrainer.train_epoch
    message = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1234567 bytes."

    def train_epoch(self):  # the fault: XLA cannot allocate a group of more than 2 members
        if self.shape.members > 2:
            raise RuntimeError(message)
        return real(self)

    monkeypatch.setattr(_group.GroupTrainer, "train_epoch", train_epoch)
    hypermodel = _space(layers=(1, 1), units=(8,), activations=("relu",), optimizers=("adam",),
                        schedules=("constant",), l2=(0.0, 0.0), dropout=(0.0, 0.0),
                        batch_norm=(False,))
    (x, y), validation = _digits(n_train=96, n_val=32)
    tuner = _tuner(tmp_path, hypermodel, 4, tuner="random", max_trials=4, max_epochs=1)
    lines = []
    search(tuner, x, y, validation_data=validation, report=lines.append)
    assert lines == [f"a group of 4 trials does not fit in memory ({message}); running it as "
                     "groups of at most 2"]
    assert tuner.vectorize_members == 2
    assert sorted(t.status for t in tuner.oracle.trials.values()) == ["COMPLETED"] * 4
    assert [g["padded_to"] for g in tuner.vectorized_groups] == [4, 2, 2]  # the attempt too


@on_jax_and_tensorflow
def test_numpy_blas_runs_one_thread_while_a_round_runs_and_is_restored(tmp_path, monkeypatch):
    # Members' models are built (an Orthogonal initializer's SVD) while other groups compile
    # and train in threads: a multi-threaded OpenBLAS would spin against them.
    from threadpoolctl import threadpool_info, threadpool_limits

    from kerastrain.tuning import _vectorized

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    seen = []
    real = _vectorized._build_member_model

    def build(tuner, hp):
        seen.extend(blas_threads())
        return real(tuner, hp)

    monkeypatch.setattr(_vectorized, "_build_member_model", build)
    hypermodel = _space(layers=(1, 1), units=(8,), activations=("relu",), optimizers=("adam",),
                        schedules=("constant",), l2=(0.0, 0.0), dropout=(0.0, 0.0),
                        batch_norm=(False,))
    (x, y), validation = _digits(n_train=96, n_val=32)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        tuner = _tuner(tmp_path, hypermodel, 2, tuner="random", max_trials=2, max_epochs=1)
        search(tuner, x, y, validation_data=validation)
        assert blas_threads() == before
    assert before and set(before) == {2}
    assert seen and set(seen) == {1}
