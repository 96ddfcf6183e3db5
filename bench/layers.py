"""Issue 5 layers against their Keras built-in baselines (ratios, same process).

Run with ``python -m bench layers``.
Ratios > 1 mean slower than the baseline.
"""

from __future__ import annotations

import keras
import numpy as np

from bench._harness import interleaved


def _train_step(layer_factory, x, y):
    model = keras.Sequential([keras.Input(x.shape[1:]), layer_factory(),
                              keras.layers.Flatten(), keras.layers.Dense(y.shape[1])])
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def run(quick=False):
    rng = np.random.default_rng(0)
    batch, features, samples = (32, 64, 2000) if quick else (128, 256, 20000)
    repeat = 3 if quick else 7
    x = rng.normal(size=(batch, features)).astype("float32")
    y = rng.normal(size=(batch, 8)).astype("float32")
    images = rng.normal(size=(batch // 4, 16, 16, 32)).astype("float32")
    y_images = rng.normal(size=(batch // 4, 8)).astype("float32")
    data = rng.normal(size=(samples, features // 4))

    from kerastrain import layers

    times = interleaved({
        "dense": _train_step(lambda: keras.layers.Dense(features), x, y),
        "weight_norm_dense": _train_step(
            lambda: layers.WeightNormalization(keras.layers.Dense(features)), x, y),
        "conv_batch_norm": _train_step(
            lambda: keras.layers.BatchNormalization(), images, y_images),
        "conv_lrn": _train_step(
            lambda: layers.LocalResponseNormalization(2, 2.0, 1e-4, 0.75), images, y_images),
        "dropout": _train_step(lambda: keras.layers.Dropout(0.5), x, y),
        "mc_dropout": _train_step(lambda: layers.MCDropout(0.5), x, y),
    }, repeat=repeat)

    def adapt(layer_factory):
        return lambda: layer_factory().adapt(data)

    adapt_times = interleaved({
        "keras_normalization": adapt(keras.layers.Normalization),
        "min_max": adapt(layers.MinMaxScaling),
        "pca_whiten": adapt(lambda: layers.PCA(features // 8, whiten=True)),
        "zca": adapt(layers.ZCAWhitening),
    }, repeat=repeat)
    ratios = {
        "WeightNormalization(Dense) / Dense train step": times["weight_norm_dense"] / times["dense"],
        "LocalResponseNormalization / BatchNormalization train step":
            times["conv_lrn"] / times["conv_batch_norm"],
        "MCDropout / Dropout train step": times["mc_dropout"] / times["dropout"],
        "MinMaxScaling.adapt / Normalization.adapt":
            adapt_times["min_max"] / adapt_times["keras_normalization"],
        "PCA(whiten).adapt / Normalization.adapt":
            adapt_times["pca_whiten"] / adapt_times["keras_normalization"],
        "ZCAWhitening.adapt / Normalization.adapt":
            adapt_times["zca"] / adapt_times["keras_normalization"],
    }
    return {"ratios": ratios, "seconds": {**times, **adapt_times},
            "sizes": {"batch": batch, "features": features, "adapt_samples": samples}}
