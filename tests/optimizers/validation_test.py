"""Every argument check of kerastrain.optimizers, one message each (STYLE.md shape)."""

import re

import keras
import pytest

from kerastrain import optimizers
from kerastrain.optimizers import transforms as T

SCHEDULE = keras.optimizers.schedules.ExponentialDecay(0.9, 10, 0.5)

CASES = [
    (lambda: optimizers.Adam(learning_rate=-0.1), ValueError,
     "Argument `learning_rate` must be >= 0. Received: learning_rate=-0.1"),
    (lambda: optimizers.SGD(learning_rate="fast"), TypeError,
     "Argument `learning_rate` must be a number (int or float). Received: learning_rate='fast' "
     "of type str"),
    (lambda: optimizers.Adam(beta_1=1.5), ValueError,
     "Argument `beta_1` must be in [0, 1). Received: beta_1=1.5"),
    (lambda: optimizers.Adam(beta_2=1.0), ValueError,
     "Argument `beta_2` must be in [0, 1). Received: beta_2=1.0"),
    (lambda: optimizers.Adam(beta_2=SCHEDULE), TypeError,
     "Argument `beta_2` must be a float in [0, 1). Received: beta_2=<"),
    (lambda: optimizers.RMSprop(rho=-0.1), ValueError,
     "Argument `rho` must be in [0, 1). Received: rho=-0.1"),
    (lambda: optimizers.Adadelta(rho=1.0), ValueError,
     "Argument `rho` must be in [0, 1). Received: rho=1.0"),
    # keras.optimizers.SGD's range [0, 1] and text ("`momentum` must be a float between [0, 1].")
    (lambda: optimizers.SGD(momentum=1.5), ValueError,
     "Argument `momentum` must be a float between [0, 1]. Received: momentum=1.5"),
    (lambda: optimizers.SGD(momentum=-0.5), ValueError,
     "Argument `momentum` must be a float between [0, 1]. Received: momentum=-0.5"),
    (lambda: T.Momentum(momentum="high"), TypeError,
     "Argument `momentum` must be a number (int or float). Received: momentum='high' of type str"),
    # keras.optimizers.AdamW raises ValueError("Argument `weight_decay` must be a float.
    # Received: weight_decay=None").
    (lambda: optimizers.AdamW(weight_decay=None), ValueError,
     "Argument `weight_decay` must be a float. Received: weight_decay=None AdamW is Adam with "
     "weight decay: for none use Adam."),
    (lambda: optimizers.Adam(epsilon=0.0), ValueError,
     "Argument `epsilon` must be > 0. Received: epsilon=0.0"),
    (lambda: optimizers.Adagrad(epsilon=-1e-7), ValueError,
     "Argument `epsilon` must be > 0. Received: epsilon=-1e-07"),
    (lambda: optimizers.Adam(convention="pytorch"), ValueError,
     "Argument `convention` must be one of 'keras', 'torch'. Received: convention='pytorch' "
     'Use "keras" to match keras.optimizers or "torch" to match torch.optim.'),
    (lambda: T.ClipByValue(0.0), ValueError,
     "Argument `clip_value` must be > 0. Received: clip_value=0.0"),
    (lambda: T.ClipByNorm(-1.0), ValueError,
     "Argument `clip_norm` must be > 0. Received: clip_norm=-1.0"),
    (lambda: T.ClipByGlobalNorm(0), ValueError,
     "Argument `clip_norm` must be > 0. Received: clip_norm=0"),
    (lambda: T.AdaptiveClip(clipping=-0.01), ValueError,
     "Argument `clipping` must be > 0. Received: clipping=-0.01"),
    (lambda: optimizers.Adagrad(reset_interval=0), ValueError,
     "Argument `reset_interval` must be an integer >= 1. Received: reset_interval=0 "
     "Use None to never reset the accumulator."),
    (lambda: optimizers.Adagrad(reset_interval=2.5), TypeError,
     "Argument `reset_interval` must be an integer. Received: reset_interval=2.5 of type float"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-0.1), ValueError,
     "Argument `initial_accumulator_value` must be >= 0. Received: initial_accumulator_value=-0.1"),
    (lambda: optimizers.SGD(nesterov="yes"), TypeError,
     "Argument `nesterov` must be a bool (True or False). Received: nesterov='yes' of type str"),
    (lambda: optimizers.Adam(record_statistics=1), TypeError,
     "Argument `record_statistics` must be a bool (True or False). Received: record_statistics=1"),
    (lambda: optimizers.Adam(statistics_every=0), ValueError,
     "Argument `statistics_every` must be an integer >= 1. Received: statistics_every=0 "
     "Record the statistics every N >= 1 steps (1: every step)."),
    (lambda: optimizers.monitored(keras.optimizers.SGD(), statistics_every=2.0), TypeError,
     "Argument `statistics_every` must be an integer. Received: statistics_every=2.0 of type "
     "float"),
    (lambda: optimizers.SGD().schedule_statistics(every=-3), ValueError,
     "Argument `statistics_every` must be an integer >= 1. Received: statistics_every=-3"),
    (lambda: optimizers.SGD().schedule_statistics(4, offset="last"), TypeError,
     "Argument `offset` must be an integer. Received: offset='last' of type str"),
    (lambda: optimizers.SGD(momentum=0.9, dampening=0.1), ValueError,
     'Argument `dampening` must be 0 with convention="keras". Received: dampening=0.1 '
     "Dampening is torch.optim.SGD's argument: pass convention=\"torch\"."),
    (lambda: optimizers.SGD(momentum=0.9, dampening=1.5, convention="torch"), ValueError,
     "Argument `dampening` must be in [0, 1]. Received: dampening=1.5"),
    (lambda: optimizers.SGD(momentum=0.9, nesterov=True, dampening=0.1, convention="torch"),
     ValueError, "Argument `dampening` must be 0 with nesterov=True. Received: dampening=0.1 "
     "Nesterov momentum needs zero dampening (as in torch.optim.SGD)."),
    (lambda: optimizers.Adagrad(lr_decay=-0.01), ValueError,
     "Argument `lr_decay` must be >= 0. Received: lr_decay=-0.01"),
    (lambda: optimizers.Chain(T.Momentum(0.9)), TypeError,
     "Argument `transforms` must be a list of Transform instances. Received: transforms=Momentum("),
    (lambda: optimizers.Chain([T.Momentum(0.9), "adam"]), TypeError,
     "Argument `transforms` must be a list of Transform instances. Received: transforms='adam' of "
     "type str Build transforms from kerastrain.optimizers.transforms"),
    (lambda: T.ScaleByRMS(epsilon_placement="middle"), ValueError,
     "Argument `epsilon_placement` must be one of 'inside', 'outside'. "
     "Received: epsilon_placement='middle'"),
    # Keras Adam's ε-hat is the Adam preset's own transform now (KerasAdamScale).
    (lambda: T.ScaleByRMS(epsilon_placement="outside_uncorrected"), ValueError,
     "Argument `epsilon_placement` must be one of 'inside', 'outside'. "
     "Received: epsilon_placement='outside_uncorrected'"),
    (lambda: T.ScaleByRMS.from_config({"beta_2": 0.9, "epsilon": 1e-7,
                                       "epsilon_placement": "inside", "keras_rounding": True}),
     ValueError, "Argument `epsilon_placement` must be \"inside\" or \"outside\" (keras_rounding "
     "is gone). Received: epsilon_placement='inside' Saved ScaleByRMS configs with "
     "keras_rounding or \"outside_uncorrected\" load only in keras.optimizers.Adam's "
     "combination (both, bias_correction=True, centered=False); use the Adam preset for "
     "Keras's numbers."),
    (lambda: T.Hyperparameter("rate", "a rate", kind="real"), ValueError,
     "Argument `kind` must be one of 'float', 'schedulable', 'integer', 'bool', 'choice'. "
     "Received: kind='real'"),
    (lambda: T.AdagradScale(epsilon_placement="outside_uncorrected"), ValueError,
     "Argument `epsilon_placement` must be one of 'inside', 'outside'. "
     "Received: epsilon_placement='outside_uncorrected'"),
    (lambda: optimizers.SGD(weight_decay=-0.1), ValueError,
     "Argument `weight_decay` must be >= 0. Received: weight_decay=-0.1"),
    (lambda: optimizers.AdamW(weight_decay=-0.1), ValueError,
     "Argument `weight_decay` must be >= 0. Received: weight_decay=-0.1"),
    (lambda: T.WeightDecay(0.1, decoupled=None), TypeError,
     "Argument `decoupled` must be a bool (True or False). Received: decoupled=None"),
    (lambda: optimizers.Nadam(momentum_decay=0.0), ValueError,
     "Argument `momentum_decay` must be > 0. Received: momentum_decay=0.0"),
    (lambda: optimizers.LARS(trust_coefficient=0.0), ValueError,
     "Argument `trust_coefficient` must be > 0. Received: trust_coefficient=0.0"),
    (lambda: optimizers.LARS(epsilon=-1.0), ValueError,
     "Argument `epsilon` must be >= 0. Received: epsilon=-1.0"),
    (lambda: optimizers.Lookahead(3), TypeError,
     "Argument `optimizer` must be a keras.optimizers.Optimizer instance or name. Received: "
     "optimizer=3 of type int Pass an optimizer object or name, e.g. keras.optimizers.Adam() "
     'or "adam".'),
    (lambda: optimizers.Lookahead("adamm"), ValueError,
     "Argument `optimizer` must be a keras.optimizers.Optimizer instance or the name of one. "
     "Received: optimizer='adamm' Known names are those of keras.optimizers.get, e.g. "
     '"adam", "sgd", "rmsprop".'),
    (lambda: optimizers.Lookahead(keras.optimizers.SGD(), sync_period=0), ValueError,
     "Argument `sync_period` must be an integer >= 1. Received: sync_period=0"),
    (lambda: optimizers.Lookahead(keras.optimizers.SGD(), slow_step_size=0.0), ValueError,
     "Argument `slow_step_size` must be in (0, 1]. Received: slow_step_size=0.0"),
    (lambda: optimizers.Lookahead(keras.optimizers.SGD(), clipnorm=1.0), TypeError,
     "Lookahead takes no base-optimizer arguments. Received: ['clipnorm']. "
     "Set them on the wrapped optimizer."),
    (lambda: optimizers.monitored(optimizers.Adam(name="adam")), TypeError,
     "Argument `optimizer` must be an optimizer that does not record gradient statistics "
     "already. Received: optimizer='adam' of type Adam. kerastrain optimizers record them "
     "themselves; use the optimizer directly."),
    (lambda: optimizers.monitored(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(), name="scaled")),
     TypeError, "Argument `optimizer` must not be a LossScaleOptimizer: its apply() gets "
     "gradients multiplied by the loss scale. Received: optimizer='scaled' of "
     "type LossScaleOptimizer. Wrap the inner optimizer instead: "
     "LossScaleOptimizer(monitored(keras.optimizers.Adam())), or compile with "
     "monitored(keras.optimizers.Adam()) under mixed_float16."),
    (lambda: optimizers.Adam(record_statistics=False, name="adam").gradient_statistics(),
     ValueError,
     "Optimizer `adam` was created with record_statistics=False, so it records no gradient "
     "statistics. Create it with record_statistics=True."),
    (lambda: optimizers.Adam(name="adam").gradient_statistics(), ValueError,
     "Optimizer `adam` has not been built yet, so it has no gradient statistics. Train (or call "
     "`optimizer.build(model.trainable_variables)`) first."),
]


@pytest.mark.parametrize("make, error, message", CASES, ids=[c[2][:60] for c in CASES])
def test_message(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()
