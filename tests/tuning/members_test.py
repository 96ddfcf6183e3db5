"""The vectorized program's per-member optimizer values come from the presets' declarations."""

import keras
import pytest

from kerastrain import optimizers
from kerastrain.tuning import _members, _spaces


@pytest.mark.parametrize("name, family, reference", [
    ("sgd", "sgd", {}),
    ("momentum", "sgd", {"momentum": 0.9, "nesterov": False}),
    ("nesterov", "sgd", {"momentum": 0.9, "nesterov": True}),
    ("adagrad", "adagrad", {"initial_accumulator": keras.optimizers.Adagrad().initial_accumulator_value,
                            "epsilon": keras.optimizers.Adagrad().epsilon}),
    ("adadelta", "adadelta", {"rho": keras.optimizers.Adadelta().rho,
                              "epsilon": keras.optimizers.Adadelta().epsilon}),
    ("rmsprop", "rmsprop", {"rho": keras.optimizers.RMSprop().rho,
                            "epsilon": keras.optimizers.RMSprop().epsilon}),
    ("adam", "adam", {"beta_1": keras.optimizers.Adam().beta_1,
                      "beta_2": keras.optimizers.Adam().beta_2,
                      "epsilon": keras.optimizers.Adam().epsilon}),
    ("adamw", "adam", {"beta_1": keras.optimizers.AdamW().beta_1,
                       "beta_2": keras.optimizers.AdamW().beta_2,
                       "epsilon": keras.optimizers.AdamW().epsilon,
                       "weight_decay": keras.optimizers.AdamW().weight_decay}),
])
def test_settings_are_the_presets_declared_values_which_are_keras_defaults(
        name, family, reference):
    # The space's presets use Keras's defaults (convention "keras"): Keras's own
    # optimizers are the independent reference for the values the transforms declare.
    assert _members.optimizer_settings(name) == (family, pytest.approx(reference))


def test_a_preset_with_a_variant_the_program_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(_spaces, "make_optimizer",
                        lambda name, rate: optimizers.RMSprop(rate, centered=True))
    with pytest.raises(NotImplementedError, match="run this search with vectorize=False"):
        _members.optimizer_settings.__wrapped__("rmsprop")
