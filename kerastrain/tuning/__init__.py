"""kerastrain.tuning: the chapter's hyperparameter search, run by KerasTuner.

KerasTuner (grid, random, Bayesian, Hyperband) is the engine; kerastrain adds
the chapter's search space (`MLPHyperModel`), k-fold cross-validation
(``cv=k``), the median stopping rule (`MedianStoppingPruner`), an atomic
``results.csv``, crash-safe resume, one TensorBoard run per trial with HParams,
and parallel trials through KerasTuner's chief/worker mode.

Submodules import `keras_tuner` on first use of a name, so ``import
kerastrain`` stays light.
"""

import importlib

__all__ = [
    "MLPHyperModel",
    "MedianStoppingPruner",
    "TUNERS",
    "create_tuner",
    "default_config",
    "kfold_indices",
    "load_config",
    "median_stopping_rule",
    "read_results",
    "run_config",
    "search",
    "write_results",
]

_LOCATIONS = {
    "MLPHyperModel": "kerastrain.tuning._spaces",
    "MedianStoppingPruner": "kerastrain.tuning._pruning",
    "median_stopping_rule": "kerastrain.tuning._pruning",
    "TUNERS": "kerastrain.tuning._tuner",
    "create_tuner": "kerastrain.tuning._tuner",
    "search": "kerastrain.tuning._tuner",
    "kfold_indices": "kerastrain.tuning._cv",
    "read_results": "kerastrain.tuning._results",
    "write_results": "kerastrain.tuning._results",
    "default_config": "kerastrain.tuning._config",
    "load_config": "kerastrain.tuning._config",
    "run_config": "kerastrain.tuning._driver",
}


def __getattr__(name):
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'kerastrain.tuning' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LOCATIONS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
