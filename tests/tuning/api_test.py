"""The public API of kerastrain.tuning is pinned, and importing kerastrain stays light."""

import subprocess
import sys

import kerastrain.tuning as tuning

PUBLIC = [
    "MLPHyperModel", "MedianStoppingPruner", "TUNERS", "create_tuner", "default_config",
    "kfold_indices", "load_config", "median_stopping_rule", "read_results", "run_config",
    "search", "write_results",
]


def test_all_is_pinned_and_every_name_resolves():
    assert sorted(tuning.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(tuning, name) is not None, name
    assert tuning.TUNERS == ("random", "grid", "bayesian", "hyperband")


def test_unknown_attribute():
    try:
        tuning.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "has no attribute 'NoSuchThing'" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_import_kerastrain_does_not_import_keras_tuner():
    code = "import sys, kerastrain; print('keras_tuner' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
