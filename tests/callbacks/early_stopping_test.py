import contextlib
import io
import math
import warnings

import keras
import numpy as np
import pytest
from _callback_helpers import mlp, regression_data

from kerastrain.callbacks import EarlyStopping, StoppingReason
from kerastrain.callbacks._stopping_rules import (
    EarlyStoppingPolicy,
    EarlyStoppingState,
    decide,
)
from kerastrain.testing import TestCase

# Tiny fits: eager is fastest on TensorFlow (no tracing); on JAX op-by-op dispatch is
# slower than one jit compile.
FAST = {"run_eagerly": keras.config.backend() != "jax"}


def drive(callback, model, values):
    """Feed ``values`` as epoch logs of ``monitor`` until the callback stops training."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"score": value})
        epochs += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs


class Scripted(keras.callbacks.Callback):
    """Puts a scripted ``score`` into the epoch logs and records the weights then."""

    def __init__(self, values):
        super().__init__()
        self.values, self.weights = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.weights.append([np.array(w) for w in self.model.get_weights()])


class DecisionTest(TestCase):
    def test_matches_keras_on_synthetic_logs(self):
        # Reference: keras.callbacks.EarlyStopping, the class whose rule we keep.
        configs = [
            dict(patience=0), dict(patience=2), dict(patience=3, min_delta=0.05),
            dict(patience=2, baseline=0.5), dict(patience=1, start_from_epoch=3),
            dict(patience=2, mode="max"), dict(patience=4, min_delta=0.01, mode="max",
                                               baseline=0.2),
        ]
        model = mlp()
        for seed in range(6):
            values = np.cumsum(self.rng.normal(scale=0.2, size=25)) + 1.0
            values = [float(v) for v in values] if seed % 2 else [float(v) for v in values[::-1]]
            for config in configs:
                config = {"mode": "min", **config}
                ours = EarlyStopping(monitor="score", check_finite=False, **config)
                theirs = keras.callbacks.EarlyStopping(monitor="score", **config)
                ran = drive(ours, model, values), drive(theirs, model, values)
                self.assertEqual(ran[0], ran[1], msg=f"{config} on {values}")
                self.assertEqual(ours.stopped_epoch, theirs.stopped_epoch)
                self.assertEqual(ours.best, theirs.best)
                self.assertEqual(ours.best_epoch, theirs.best_epoch)
                self.assertEqual(ours.wait, theirs.wait)
                stopped = theirs.stopped_epoch > 0
                self.assertEqual(ours.stopping_reason is StoppingReason.NO_IMPROVEMENT, stopped)

    def policy(self, **kwargs):
        return EarlyStoppingPolicy(monitor="score", **{"mode": "min", **kwargs})

    def test_not_finite_stops_even_during_warm_up(self):
        policy = self.policy(start_from_epoch=5)
        for value in (math.nan, math.inf, -math.inf):
            decision = decide(policy, EarlyStoppingState(), value, 0)
            self.assertIs(decision.reason, StoppingReason.NOT_FINITE)
            self.assertIn(f"`score` became {value} at epoch 1", decision.message)
        decision = decide(self.policy(check_finite=False, patience=3), EarlyStoppingState(1.0),
                          math.nan, 1)
        self.assertIs(decision.reason, StoppingReason.NOT_STOPPED)

    def test_divergence_threshold(self):
        policy = self.policy(divergence_threshold=10.0, patience=100)
        self.assertFalse(decide(policy, EarlyStoppingState(), 10.0, 0).stop)
        decision = decide(policy, EarlyStoppingState(), 10.5, 3)
        self.assertIs(decision.reason, StoppingReason.DIVERGED)
        self.assertEqual(decision.message,
                         "`score`=10.5 passed divergence_threshold=10 at epoch 4.")
        max_policy = self.policy(mode="max", divergence_threshold=0.1)
        self.assertIs(decide(max_policy, EarlyStoppingState(), 0.05, 0).reason,
                      StoppingReason.DIVERGED)

    def test_stopping_threshold_records_the_improvement_first(self):
        policy = self.policy(stopping_threshold=0.1, patience=100)
        decision = decide(policy, EarlyStoppingState(0.5, 0, 0), 0.1, 2)
        self.assertIs(decision.reason, StoppingReason.THRESHOLD_REACHED)
        self.assertTrue(decision.improved)
        self.assertEqual(decision.state, EarlyStoppingState(0.1, 2, 0))
        self.assertEqual(decision.message,
                         "`score`=0.1 reached stopping_threshold=0.1 at epoch 3.")
        self.assertFalse(decide(policy, EarlyStoppingState(0.5, 0, 0), 0.11, 2).stop)

    def test_no_improvement_message(self):
        policy = self.policy(patience=1, min_delta=0.5)
        decision = decide(policy, EarlyStoppingState(1.0, 0, 0), 0.9, 1)
        self.assertIs(decision.reason, StoppingReason.NO_IMPROVEMENT)
        self.assertEqual(decision.message, "`score` did not improve by more than 0.5 for 1 "
                         "epoch(s); best 1 at epoch 1.")


class EarlyStoppingFitTest(TestCase):
    def fit(self, callback, values, **fit_kwargs):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", **FAST)
        scripted = Scripted(values)
        history = model.fit(x, y, epochs=len(values), batch_size=16, verbose=0,
                            callbacks=[scripted, callback], **fit_kwargs)
        return model, scripted, history

    def test_restores_best_weights_kept_on_device(self):
        callback = EarlyStopping(monitor="score", mode="min", patience=2,
                                 restore_best_weights=True)
        model, scripted, history = self.fit(callback, [3.0, 1.0, 2.0, 2.5, 4.0, 5.0])
        self.assertEqual(len(history.history["loss"]), 4)
        self.assertIs(callback.stopping_reason, StoppingReason.NO_IMPROVEMENT)
        self.assertEqual(callback.stopped_epoch, 3)
        self.assertEqual(callback.best_epoch, 1)
        for saved in callback.best_weights:
            self.assertTrue(keras.ops.is_tensor(saved))
            self.assertNotIsInstance(saved, np.ndarray)
        self.assertAllClose(model.get_weights(), scripted.weights[1], rtol=0, atol=0)
        self.assertFalse(np.allclose(scripted.weights[1][0], scripted.weights[3][0]))

    def test_non_finite_value_stops_and_says_why(self):
        callback = EarlyStopping(monitor="score", mode="min", patience=10)
        _, _, history = self.fit(callback, [1.0, 0.5, math.nan, 0.1])
        self.assertEqual(len(history.history["loss"]), 3)
        self.assertIs(callback.stopping_reason, StoppingReason.NOT_FINITE)
        self.assertEqual(callback.stopping_message, "`score` became nan at epoch 3.")

    def test_goal_reached_with_validation_loss_and_auto_mode(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", **FAST)
        callback = EarlyStopping(stopping_threshold=1e9)  # val_loss, mode auto -> min
        history = model.fit(x, y, epochs=5, batch_size=16, validation_split=0.25, verbose=0,
                            callbacks=[callback])
        self.assertEqual(len(history.history["val_loss"]), 1)
        self.assertIs(callback.stopping_reason, StoppingReason.THRESHOLD_REACHED)
        self.assertEqual(callback.policy.mode, "min")

    def test_auto_mode_from_metric_direction(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer="sgd", loss="mse", metrics=["r2_score"], **FAST)
        callback = EarlyStopping(monitor="r2_score", patience=5)
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
        self.assertEqual(callback.policy.mode, "max")

    def test_auto_mode_unknown_direction(self):
        # Metrics are built at the first step, so the direction is decided by
        # the first epoch end at the latest.
        with self.assertRaisesRegex(
                ValueError, r"Argument `mode` must be 'min' or 'max' when the direction of the "
                r"monitored metric is unknown\. Received: mode='auto' Keras cannot tell "
                r"whether `score` should fall or rise; pass mode='min' or mode='max'\."):
            self.fit(EarlyStopping(monitor="score"), [1.0])

    def test_strict_missing_metric_lists_available(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer="sgd", loss="mse", **FAST)
        with self.assertRaisesRegex(
                ValueError, r"Argument `monitor` must name a metric present in the logs\. "
                r"Received: monitor='val_loss' Available metrics are: loss\."):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping(strict=True)])
        with pytest.warns(UserWarning, match="Available metrics are: loss"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])

    def test_reused_across_fit_calls(self):
        callback = EarlyStopping(monitor="score", patience=0, mode="min")
        self.fit(callback, [1.0, 2.0, 3.0])
        self.assertIs(callback.stopping_reason, StoppingReason.NO_IMPROVEMENT)
        self.fit(callback, [3.0, 2.0, 1.0])
        self.assertIs(callback.stopping_reason, StoppingReason.NOT_STOPPED)
        self.assertEqual(callback.best, 1.0)

    def test_serialization(self):
        callback = EarlyStopping(monitor="val_acc", min_delta=0.1, patience=3, mode="max",
                                 baseline=0.5, restore_best_weights=True, start_from_epoch=2,
                                 stopping_threshold=0.99, divergence_threshold=0.1, strict=True)
        revived = self.run_serialization_test(callback)
        self.assertEqual(revived.stopping_threshold, 0.99)


class ArgumentsTest(TestCase):
    def test_bad_arguments(self):
        cases = [
            (dict(mode="bogus"), ValueError,
             r"Argument `mode` must be one of 'auto', 'min', 'max'\. Received: mode='bogus'"),
            (dict(patience=-1), ValueError,
             r"Argument `patience` must be an integer >= 0\. Received: patience=-1"),
            (dict(patience=1.5), TypeError, r"Argument `patience` must be an integer"),
            (dict(min_delta="0.1"), TypeError, r"Argument `min_delta` must be a number"),
            (dict(monitor=3), TypeError, r"Argument `monitor` must be a metric name \(str\)"),
            (dict(restore_best_weights=1), TypeError,
             r"Argument `restore_best_weights` must be True or False"),
            (dict(baseline=math.nan), ValueError, r"Argument `baseline` must be a finite number"),
            (dict(start_from_epoch=-2), ValueError, r"Argument `start_from_epoch` must be"),
            (dict(mode="min", stopping_threshold=1.0, divergence_threshold=0.5), ValueError,
             r"Argument `divergence_threshold` must be > stopping_threshold=1 in "
             r"mode='min'\. Received: divergence_threshold=0\.5"),
            (dict(mode="max", stopping_threshold=0.9, divergence_threshold=0.95), ValueError,
             r"Argument `divergence_threshold` must be < stopping_threshold=0\.9 in mode='max'"),
        ]
        for kwargs, error, message in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(error, message):
                EarlyStopping(**kwargs)

    def test_auto_mode_thresholds_checked_before_training(self):
        x, y = regression_data()
        model = mlp()
        model.compile(optimizer="sgd", loss="mse", **FAST)
        callback = EarlyStopping(monitor="loss", stopping_threshold=1.0, divergence_threshold=0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with self.assertRaisesRegex(ValueError, r"Argument `divergence_threshold` must be >"):
                model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


# verbose: every path prints what keras.callbacks.EarlyStopping (Keras 3.15) prints; ours
# adds the stopping reason after "early stopping". (print_msg was gone from
# keras.utils.io_utils: verbose=1 raised AttributeError when training stopped.)
VERBOSE_VALUES = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]


def _printed(make, capsys, **kwargs):
    drive(make(monitor="score", mode="min", patience=2, **kwargs), mlp(), VERBOSE_VALUES)
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("restore_best_weights", [False, True])
@pytest.mark.parametrize("verbose", [0, 1])
def test_verbose_prints_what_keras_prints(capsys, verbose, restore_best_weights):
    kwargs = dict(verbose=verbose, restore_best_weights=restore_best_weights)
    expected = _printed(keras.callbacks.EarlyStopping, capsys, **kwargs)
    printed = _printed(EarlyStopping, capsys, **kwargs)
    assert len(printed) == len(expected) == verbose * (1 + restore_best_weights)
    if verbose:
        assert expected[0] == "Epoch 4: early stopping"
        assert printed[0].startswith(expected[0] + ": ")
        assert printed[1:] == expected[1:]


def test_verbose_without_stopping_prints_the_restore():
    callback = EarlyStopping(monitor="score", mode="min", patience=10, verbose=1,
                             restore_best_weights=True)
    reference = keras.callbacks.EarlyStopping(monitor="score", mode="min", patience=10,
                                              verbose=1, restore_best_weights=True)
    outputs = []
    for each in (reference, callback):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            drive(each, mlp(), [1.0, 0.5, 0.6])
        outputs.append(out.getvalue())
    # Both restore the best weights at the end of a run that did not stop, and say so.
    assert outputs[1] == outputs[0] == (
        "Restoring model weights from the end of the best epoch: 2.\n")


def test_verbose_logs_when_interactive_logging_is_off(capsys, caplog):
    keras.config.disable_interactive_logging()
    try:
        with caplog.at_level("INFO", logger="kerastrain"):
            drive(EarlyStopping(monitor="score", mode="min", patience=2, verbose=1), mlp(),
                  VERBOSE_VALUES)
    finally:
        keras.config.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    assert "Epoch 4: early stopping: " in caplog.text


def test_verbose_fit_stops_and_prints(capsys):
    x, y = regression_data()
    model = mlp()
    model.compile(optimizer="sgd", loss="mse", **FAST)
    scripted = Scripted(VERBOSE_VALUES)
    model.fit(x, y, epochs=6, verbose=0, callbacks=[
        scripted, EarlyStopping(monitor="score", mode="min", patience=2, verbose=1,
                                restore_best_weights=True)])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Epoch 4: early stopping: ")
    assert printed[1] == "Restoring model weights from the end of the best epoch: 2."
    assert len(scripted.weights) == 4
