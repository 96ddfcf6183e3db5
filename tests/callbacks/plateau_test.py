"""ReduceLROnPlateau: Keras's decisions, with a schedule, a real fit, save and reload, no re-trace."""

import warnings

import keras
import numpy as np
import pytest
from keras import ops

from kerastrain import _compat
from kerastrain.callbacks import ReduceLROnPlateau
from kerastrain.callbacks._plateau import after_reduction, plateau_step
from kerastrain.schedules import SGDR, Scaled, StepDecay, values
from kerastrain.testing import reload_model


@keras.saving.register_keras_serializable(package="kerastrain_tests")
def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def _model(learning_rate):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False,
                                                                     kernel_initializer="zeros")])
    # d(loss)/dw = mean(x) = 1: each SGD step moves the weight by exactly -lr.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss=mean_prediction)
    return model


def test_plateau_step_counts_patience_and_cooldown():
    def improved(a, b):
        return a < b - 0.1

    state, reductions = (np.inf, 0, 0), []
    for value in [5.0, 4.0, 4.0, 3.95, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0]:
        state, reduce = plateau_step(state, value, improved=improved, patience=2)
        if reduce:
            state = after_reduction(state, cooldown=1)
        reductions.append(reduce)
    # Traced by hand: 5, 4 improve; 4, 3.95 (within min_delta) wait 1, 2 -> reduce.
    # The epoch that ends the 1-epoch cooldown already counts (Keras's rule), so
    # 4, 4 wait 1, 2 -> reduce; 4, 4 -> reduce again; 3 improves; 3 waits 1.
    assert reductions == [False, False, False, True, False, True, False, True, False, False]


SEQUENCES = {
    "plateau": [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
    "noisy": [1.0, 0.95, 0.96, 0.94, 0.9400001, 0.97, 0.93, 0.93, 0.99, 0.92, 0.92, 0.95],
    "accuracy": [0.5, 0.6, 0.6, 0.61, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
@pytest.mark.parametrize(("patience", "cooldown"), [(1, 0), (2, 1), (3, 2)])
def test_decisions_equal_keras_reduce_lr_on_plateau(name, patience, cooldown):
    monitor, mode = ("val_accuracy", "max") if name == "accuracy" else ("val_loss", "auto")
    kwargs = dict(monitor=monitor, mode=mode, factor=0.5, patience=patience, cooldown=cooldown,
                  min_delta=1e-3, min_lr=0.01)
    reference = keras.callbacks.ReduceLROnPlateau(**kwargs)
    reference.set_model(_model(0.1))
    ours = ReduceLROnPlateau(**kwargs)
    ours.set_model(_model(StepDecay(0.1, 1000)))
    for callback in (reference, ours):
        callback.on_train_begin()
    for epoch, value in enumerate(SEQUENCES[name]):
        reference_logs, our_logs = {monitor: value}, {monitor: value}
        reference.on_epoch_end(epoch, reference_logs)
        ours.on_epoch_end(epoch, our_logs)
        np.testing.assert_allclose(our_logs["learning_rate"], reference_logs["learning_rate"],
                                   rtol=1e-6)
        rates = [float(ops.convert_to_numpy(callback.model.optimizer.learning_rate))
                 for callback in (reference, ours)]
        np.testing.assert_allclose(rates[1], rates[0], rtol=1e-6)
        assert (ours.wait, ours.cooldown_counter) == (reference.wait, reference.cooldown_counter)
    assert isinstance(_compat.learning_rate_object(ours.model.optimizer), Scaled)


def test_fit_uses_the_reduced_schedule_inside_the_compiled_step():
    base = StepDecay(0.1, 3, gamma=0.9)
    model = _model(base)
    constant_metric = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update(plateau=1.0)
    )
    callback = ReduceLROnPlateau(monitor="plateau", mode="min", factor=0.5, patience=1)
    history = model.fit(np.ones((4, 1)), np.zeros((4, 1)), batch_size=2, epochs=4, verbose=0,
                        callbacks=[constant_metric, callback])
    # Epoch 0 sets the best; epochs 1, 2, 3 each reduce (patience 1): factors per step.
    factors = np.repeat([1.0, 1.0, 0.5, 0.25], 2)
    base_rates = np.array([0.1 * 0.9 ** (t // 3) for t in range(8)])
    weight = model.trainable_weights[0].numpy()[0, 0]
    np.testing.assert_allclose(weight, -np.sum(factors * base_rates), rtol=1e-5)
    schedule = _compat.learning_rate_object(model.optimizer)
    assert isinstance(schedule, Scaled) and schedule.factor == 0.125
    # The logged rate is the one before the epoch's reduction (as Keras logs it).
    np.testing.assert_allclose(history.history["learning_rate"][-1],
                               0.25 * 0.1 * 0.9 ** (8 // 3), rtol=1e-5)
    revived = reload_model(model)
    revived_schedule = _compat.learning_rate_object(revived.optimizer)
    assert isinstance(revived_schedule, Scaled)
    assert revived_schedule.get_config() == schedule.get_config()


def _tracing(step):
    """Whether ``step`` is symbolic: this call is a trace, not an eager evaluation."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    import jax

    return isinstance(ops.convert_to_tensor(step), jax.core.Tracer)


class _CountingSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A StepDecay rate counting its traces (eager reads, e.g. of
    ``optimizer.learning_rate`` at an epoch's end, are not counted)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, step):
        self.calls += int(_tracing(step))
        return 0.1 * 0.9 ** ops.floor(ops.cast(step, "float32") / 3.0)

    def get_config(self):
        return {}


@pytest.mark.skipif(keras.config.backend() == "torch",
                    reason="PyTorch runs the train step eagerly: there is no trace to count")
def test_reductions_assign_the_factor_without_retracing_the_train_step():
    schedule = _CountingSchedule()
    model = _model(schedule)
    variables_before = len(model.optimizer.variables)
    x, y = np.ones((4, 1)), np.zeros((4, 1))
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # traced without the callback
    constant_metric = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update(plateau=1.0)
    )
    seen = {}
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.setdefault(
        epoch, (schedule.calls, model.train_function)))
    callback = ReduceLROnPlateau(monitor="plateau", mode="min", factor=0.5, patience=1)
    model.fit(x, y, batch_size=2, epochs=5, verbose=0,
              callbacks=[constant_metric, record, callback])
    # Epoch 0 sets the best; epochs 1-4 each reduce (patience 1): four assigns.
    assert model.optimizer.learning_rate is not None
    scaled = _compat.learning_rate_object(model.optimizer)
    assert isinstance(scaled, Scaled) and scaled.factor == 0.5 ** 4
    # Wrapping the already traced schedule traced the step anew once (epoch 0);
    # the four reductions after it traced nothing and kept the same train function.
    calls, function = seen[0]
    assert calls >= 1
    assert [seen[epoch] for epoch in range(1, 5)] == [(calls, function)] * 4
    assert schedule.calls == calls and model.train_function is function
    # ...and the compiled step used each reduced factor (2 steps an epoch, the first
    # fit's 2 steps at factor 1): d(loss)/dw = 1, so w = -sum(rates).
    factors = np.concatenate([[1.0, 1.0], np.repeat([1.0, 1.0, 0.5, 0.25, 0.125], 2)])
    base_rates = np.array([0.1 * 0.9 ** (t // 3) for t in range(12)])
    weight = keras.ops.convert_to_numpy(model.trainable_weights[0])[0, 0]
    np.testing.assert_allclose(weight, -np.sum(factors * base_rates), rtol=1e-5)
    # The factor lives in the schedule, not in the optimizer: the optimizer saves
    # and reloads the variables Keras expects.
    assert len(model.optimizer.variables) == variables_before


def test_reloaded_model_keeps_the_reduced_factor_and_the_optimizer_state():
    model = _model(StepDecay(0.1, 3, gamma=0.9))
    constant_metric = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update(plateau=1.0)
    )
    callback = ReduceLROnPlateau(monitor="plateau", mode="min", factor=0.5, patience=1)
    model.fit(np.ones((4, 1)), np.zeros((4, 1)), batch_size=2, epochs=3, verbose=0,
              callbacks=[constant_metric, callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        revived = reload_model(model)
    # Keras skips an optimizer's saved variables when their count differs from its own.
    assert not [item for item in caught if "Skipping variable loading" in str(item.message)]
    assert _compat.learning_rate_object(revived.optimizer).factor == 0.25
    assert int(keras.ops.convert_to_numpy(revived.optimizer.iterations)) == 6
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(revived.optimizer.learning_rate)),
                               0.25 * 0.1 * 0.9 ** 2, rtol=1e-6)


def test_deprecated_alias_in_schedules_warns_once_and_works():
    import kerastrain.schedules as schedules

    schedules._WARNED.discard("ReduceLROnPlateau")
    with pytest.warns(DeprecationWarning) as caught:
        alias = schedules.ReduceLROnPlateau
    assert [str(item.message) for item in caught] == [
        "kerastrain.schedules.ReduceLROnPlateau moved to kerastrain.callbacks.ReduceLROnPlateau "
        "(it is a callback); the old name will be removed in a future release. "
        "Use `from kerastrain.callbacks import ReduceLROnPlateau`."
    ]
    assert alias is ReduceLROnPlateau
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from kerastrain.schedules import ReduceLROnPlateau as again  # no second warning
    assert again is ReduceLROnPlateau
    assert "ReduceLROnPlateau" not in schedules.__all__
    with pytest.raises(AttributeError, match="has no attribute 'Missing'"):
        schedules.Missing  # noqa: B018


def test_saved_model_with_the_callback_config_reloads():
    callback = ReduceLROnPlateau(monitor="val_auc", factor=0.5, patience=2, min_lr=1e-4)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(callback))
    assert isinstance(revived, ReduceLROnPlateau)
    assert revived.get_config() == callback.get_config()


def test_fit_with_a_constant_rate_sets_it_like_keras():
    model = _model(0.1)
    constant_metric = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update(plateau=1.0)
    )
    callback = ReduceLROnPlateau(monitor="plateau", mode="min", factor=0.5, patience=1,
                                 min_lr=0.03)
    model.fit(np.ones((4, 1)), np.zeros((4, 1)), batch_size=2, epochs=4, verbose=0,
              callbacks=[constant_metric, callback])
    rates = np.repeat([0.1, 0.1, 0.05, 0.03], 2)
    weight = model.trainable_weights[0].numpy()[0, 0]
    np.testing.assert_allclose(weight, -np.sum(rates), rtol=1e-5)


def test_min_lr_floors_the_reduced_schedule():
    model = _model(Scaled(SGDR(0.1, 10), factor=0.001))
    callback = ReduceLROnPlateau(min_lr=0.02)
    callback.set_model(model)
    callback.on_train_begin()
    schedule = _compat.learning_rate_object(model.optimizer)
    assert schedule.min_learning_rate == 0.02
    np.testing.assert_allclose(values(schedule, [0, 5]), [0.02, 0.02], rtol=1e-6)
    # Where the schedule itself is below the floor, its own value is kept.
    np.testing.assert_allclose(values(schedule, [9])[0], values(SGDR(0.1, 10), [9])[0],
                               rtol=1e-6)


def test_state_resets_on_train_begin():
    callback = ReduceLROnPlateau(patience=5)
    callback.set_model(_model(StepDecay(0.1, 10)))
    callback.on_train_begin()
    callback.on_epoch_end(0, {"val_loss": 1.0})
    callback.on_epoch_end(1, {"val_loss": 1.0})
    assert (callback.best, callback.wait) == (1.0, 1)
    callback.on_train_begin()
    assert (callback.best, callback.wait, callback.cooldown_counter) == (np.inf, 0, 0)


def test_missing_metric_warns_and_keeps_the_rate():
    callback = ReduceLROnPlateau(patience=0)
    callback.set_model(_model(StepDecay(0.1, 10)))
    callback.on_train_begin()
    with pytest.warns(UserWarning) as caught:
        callback.on_epoch_end(0, {"loss": 1.0})
    messages = [str(item.message) for item in caught if item.category is UserWarning]
    assert messages[0] == (
        "ReduceLROnPlateau: the monitored metric `val_loss` is not in the logs "
        "(available: learning_rate, loss); the rate is unchanged."
    )
    assert _compat.learning_rate_object(callback.model.optimizer).factor == 1.0


def test_callable_learning_rate_raises_at_train_begin():
    model = _model(0.1)
    model.optimizer.learning_rate = lambda: 0.1  # the public setter keeps a callable
    callback = ReduceLROnPlateau()
    callback.set_model(model)
    with pytest.raises(TypeError) as raised:
        callback.on_train_begin()
    assert str(raised.value).startswith(
        "Argument `learning_rate` must be a float, a keras Variable or a "
        "LearningRateSchedule. Received: learning_rate=<function"
    )
    assert str(raised.value).endswith(
        "of type function ReduceLROnPlateau cannot scale a plain callable learning rate; "
        "write it as a keras.optimizers.schedules.LearningRateSchedule."
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"factor": 1.0}, ValueError,
         "Argument `factor` must be in (0, 1). Received: factor=1.0 A factor >= 1 would not "
         "reduce the rate."),
        ({"patience": -1}, ValueError,
         "Argument `patience` must be an integer >= 0. Received: patience=-1"),
        ({"cooldown": 1.5}, TypeError,
         "Argument `cooldown` must be an integer. Received: cooldown=1.5 of type float"),
        ({"mode": "up"}, ValueError,
         "Argument `mode` must be one of 'auto', 'min', 'max'. Received: mode='up'"),
        ({"min_delta": -0.1}, ValueError,
         "Argument `min_delta` must be >= 0. Received: min_delta=-0.1"),
        ({"min_lr": -1e-3}, ValueError,
         "Argument `min_lr` must be >= 0. Received: min_lr=-0.001"),
        ({"monitor": None}, TypeError,
         "Argument `monitor` must be a string. Received: monitor=None of type NoneType"),
        ({"verbose": -1}, ValueError,
         "Argument `verbose` must be an integer >= 0. Received: verbose=-1"),
    ],
)
def test_bad_callback_arguments_raise_at_construction(kwargs, error, message):
    with pytest.raises(error) as raised:
        ReduceLROnPlateau(**kwargs)
    assert str(raised.value) == message


def test_no_warning_when_the_metric_is_there():
    callback = ReduceLROnPlateau(patience=0)
    callback.set_model(_model(StepDecay(0.1, 10)))
    callback.on_train_begin()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        callback.on_epoch_end(0, {"val_loss": 1.0})


# mode="auto" and verbose, against keras.callbacks.ReduceLROnPlateau (Keras 3.15).
RISING = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


def _compiled_with(metric):
    model = _model(0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=[metric])
    model.evaluate(np.ones((2, 1)), np.zeros((2, 1)), verbose=0)  # builds the metrics
    return model


@pytest.mark.parametrize(("monitor", "metric", "direction"), [
    ("val_auc", keras.metrics.AUC(name="auc"), "max"),
    ("val_precision", "precision", "max"),
    ("val_mae", "mae", "min"),
    ("val_loss", "mae", "min"),
])
def test_auto_mode_is_the_metric_direction_as_keras(monitor, metric, direction):
    # A rising metric: Keras reduces the rate when the metric should fall, not when it
    # should rise; ours must make the same decisions (val_auc was "min" by name before).
    rates = {}
    for name, make in (("keras", keras.callbacks.ReduceLROnPlateau),
                       ("ours", ReduceLROnPlateau)):
        callback = make(monitor=monitor, mode="auto", factor=0.5, patience=1)
        model = _compiled_with(metric)
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, value in enumerate(RISING):
            callback.on_epoch_end(epoch, {monitor: value})
        rates[name] = float(ops.convert_to_numpy(model.optimizer.learning_rate))
    assert rates["ours"] == pytest.approx(rates["keras"], rel=1e-6)
    assert (rates["ours"] < 0.1) == (direction == "min")


def test_auto_mode_unknown_direction_raises_value_error_as_keras():
    model = _model(0.1)
    for make in (keras.callbacks.ReduceLROnPlateau, ReduceLROnPlateau):
        callback = make(monitor="score", mode="auto")
        callback.set_model(model)
        callback.on_train_begin()
        with pytest.raises(ValueError, match="(?i)mode='max'"):
            callback.on_epoch_end(0, {"score": 1.0})


def _drive_printing(callback, values):
    callback.set_model(_model(0.1))
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_loss": value})


@pytest.mark.parametrize("verbose", [0, 1])
def test_verbose_prints_what_keras_prints(capsys, verbose):
    values = [1.0, 1.0, 1.0, 1.0]
    _drive_printing(keras.callbacks.ReduceLROnPlateau(patience=1, factor=0.5, verbose=verbose),
                    values)
    expected = capsys.readouterr().out
    _drive_printing(ReduceLROnPlateau(patience=1, factor=0.5, verbose=verbose), values)
    assert capsys.readouterr().out == expected
    assert ("ReduceLROnPlateau reducing learning rate to 0.05" in expected) == bool(verbose)


def test_verbose_logs_when_interactive_logging_is_off(capsys, caplog):
    keras.config.disable_interactive_logging()
    try:
        with caplog.at_level("INFO", logger="kerastrain"):
            _drive_printing(ReduceLROnPlateau(patience=1, factor=0.5, verbose=1), [1.0, 1.0])
    finally:
        keras.config.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05" in caplog.text
