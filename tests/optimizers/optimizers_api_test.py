"""Pins the public API of kerastrain.optimizers."""

from kerastrain import optimizers
from kerastrain.optimizers import transforms

PUBLIC = ["AdaBelief", "Adadelta", "Adagrad", "Adam", "AdamW", "Chain", "HessianFree", "LARS",
          "Lookahead", "SAM", "prepare",
          "Monitored", "Nadam", "RAdam", "RMSprop", "SGD", "monitored", "transforms"]
TRANSFORMS = ["AdadeltaScale", "AdagradScale", "AdaptiveClip", "ClipByGlobalNorm", "ClipByNorm",
              "ClipByValue", "Context", "FirstMoment", "Hyperparameter", "Momentum", "NadamMoment",
              "RectifiedScale", "ScaleByBelief", "ScaleByLearningRate", "ScaleByRMS",
              "ScaleByTrustRatio", "Scaled", "Slot", "Transform", "WeightDecay",
              "hyperparameter_table"]


def test_public_names():
    assert sorted(optimizers.__all__) == sorted(PUBLIC)
    assert sorted(transforms.__all__) == sorted(TRANSFORMS)
    for name in PUBLIC:
        assert getattr(optimizers, name) is not None
    for name in TRANSFORMS:
        assert getattr(transforms, name) is not None
