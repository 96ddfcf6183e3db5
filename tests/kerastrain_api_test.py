"""Pins kerastrain's public API: the subpackages and every name they export.

A change here is a change of the public API: update the list on purpose.
"""

import importlib
import inspect

import keras
import pytest

import kerastrain

PUBLIC = {
    "callbacks": [
        "ActivationHistograms", "DeadReLUDetector", "EarlyStopping", "GradientNormLogger",
        "LearningRateLogger", "ReduceLROnPlateau", "StoppingReason", "UpdateRatioLogger",
        "WeightHistograms", "monitor",
    ],
    "diagnostics": [
        "CriticalPointResult", "GradientCheckResult", "HessianDensityResult",
        "HessianEigenResult", "HessianTraceResult", "LRRangeResult", "LayerActivity",
        "LayerGradientCheck", "LossLandscape1D", "LossLandscape2D", "SanityReport",
        "SharpnessResult", "critical_point", "gradient_check", "hessian_density",
        "hessian_eigenvalues", "hessian_trace", "interpolate", "loss_landscape_1d",
        "loss_landscape_2d", "lr_range_test", "sanity_check", "sharpness",
    ],
    "initializers": [
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LeCunNormal",
        "LeCunUniform", "Orthogonal", "RandomNormal", "RandomUniform", "ReLUBias",
        "SymmetricInitializationWarning", "XavierNormal", "XavierUniform", "Zeros",
        "compute_fans", "lsuv",
    ],
    "layers": [
        "DecimalScaling", "LocalResponseNormalization", "MCDropout", "Maxout",
        "MeanSubtraction", "MinMaxScaling", "PCA", "WeightNormalization", "ZCAWhitening",
        "mc_predict",
    ],
    "optimizers": [
        "AdaBelief", "Adadelta", "Adagrad", "Adam", "AdamW", "Chain", "HessianFree", "LARS",
        "Lookahead", "Monitored", "Nadam", "RAdam", "RMSprop", "SAM", "SGD", "monitored",
        "prepare", "transforms",
    ],
    "regularizers": ["L1", "L1L2", "L2", "SparseCategoricalCrossentropy",
                     "sparse_categorical_crossentropy"],
    "schedules": [
        "Constant", "CyclicalLearningRate", "ExponentialCyclicalLearningRate",
        "InverseTimeDecay", "LinearDecay", "MultiStepDecay", "NaturalExponentialDecay",
        "OneCycle", "OneCycleMomentum", "PiecewiseConstant", "SGDR",
        "Scaled", "Sequence", "StepDecay", "Triangular2CyclicalLearningRate",
        "TriangularCyclicalLearningRate", "Warmup", "plot", "values",
    ],
    "tuning": [
        "MLPHyperModel", "MedianStoppingPruner", "TUNERS", "create_tuner", "default_config",
        "kfold_indices", "load_config", "median_stopping_rule", "read_results", "run_config",
        "search", "write_results",
    ],
}


def test_top_level():
    assert sorted(kerastrain.__all__) == sorted(["__version__", "tensorboard", *PUBLIC])


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_subpackage_exports(package):
    module = importlib.import_module(f"kerastrain.{package}")
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert getattr(module, name) is not None


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_serializable_classes_are_registered(package):
    """Every public class with a config is findable by Keras without custom_objects."""
    module = importlib.import_module(f"kerastrain.{package}")
    keras_base = (keras.layers.Layer, keras.optimizers.Optimizer, keras.initializers.Initializer,
                  keras.optimizers.schedules.LearningRateSchedule, keras.losses.Loss,
                  keras.regularizers.Regularizer)
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isclass(value) and issubclass(value, keras_base)):
            continue
        if value.__module__.startswith("keras."):
            continue  # re-exported Keras classes (L1, L2, L1L2)
        registered = keras.saving.get_registered_name(value)
        assert registered.startswith("kerastrain>"), (package, name, registered)
        assert keras.saving.get_registered_object(registered) is value
