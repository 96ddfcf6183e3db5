"""Pins the public names of the packages owned by issue 5."""

from kerastrain import initializers, layers, regularizers


def test_public_api():
    assert sorted(initializers.__all__) == [
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LeCunNormal",
        "LeCunUniform", "Orthogonal", "RandomNormal", "RandomUniform", "ReLUBias",
        "SymmetricInitializationWarning", "XavierNormal", "XavierUniform", "Zeros",
        "compute_fans", "lsuv"]
    assert sorted(regularizers.__all__) == [
        "L1", "L1L2", "L2", "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"]
    assert sorted(layers.__all__) == [
        "DecimalScaling", "LocalResponseNormalization", "MCDropout", "Maxout",
        "MeanSubtraction", "MinMaxScaling", "PCA", "WeightNormalization", "ZCAWhitening",
        "mc_predict"]
    for module in (initializers, layers, regularizers):
        for name in module.__all__:
            assert hasattr(module, name), name
