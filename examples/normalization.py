"""Normalization: batch norm at a high learning rate, weight normalization, whitened inputs.

Chapter 4.4-4.5. Three experiments on digits, each with one plain-SGD MLP:

1. batch normalization lets a deep ReLU network train at a learning rate at
   which the same network without it stalls or diverges;
2. weight normalization (w = g·v/‖v‖ with data-dependent init) against the
   same Dense layers with standard init, same optimizer;
3. the input's preprocessing: raw pixels (0..16), min-max scaled to [0, 1],
   z-scored (per-pixel unit variance), PCA-whitened and ZCA-whitened (adapted `kerastrain.layers` in front of the
   model), at the same learning rate — whitened inputs make the loss surface
   rounder, so plain SGD converges faster.

    python examples/normalization.py
    python examples/normalization.py --quick
"""

import _common
import numpy as np


def deep_mlp(input_dim, depth, width, batch_norm=False, weight_norm=False, preprocess=None,
             activation="relu"):
    import keras

    import kerastrain

    inputs = keras.Input(shape=(input_dim,))
    h = preprocess(inputs) if preprocess is not None else inputs
    for _ in range(depth):
        dense = keras.layers.Dense(width, activation=None if batch_norm else activation)
        if weight_norm:
            dense = kerastrain.layers.WeightNormalization(dense)
        h = dense(h)
        if batch_norm:
            h = keras.layers.Activation(activation)(keras.layers.BatchNormalization()(h))
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    return keras.Model(inputs, outputs)


def train(model, learning_rate, data, epochs, batch_size, seed):
    import keras

    import kerastrain

    (x, y), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=kerastrain.optimizers.SGD(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs,
                        batch_size=batch_size, verbose=0).history
    return {key: np.nan_to_num(np.asarray(v, dtype="float64"), nan=np.inf)
            for key, v in history.items()}


def plot_runs(ax_loss, ax_accuracy, runs, title):
    for label, history in runs.items():
        epochs = np.arange(1, len(history["loss"]) + 1)
        line, = ax_loss.semilogy(epochs, np.minimum(history["loss"], 1e3), label=label)
        ax_accuracy.plot(epochs, history["val_accuracy"], color=line.get_color(),
                         label=f"{label} ({history['val_accuracy'][-1]:.3f})")
        print(f"{title:28s} {label:34s} final loss {history['loss'][-1]:.4g} "
              f"val_accuracy {history['val_accuracy'][-1]:.4f}")
    ax_loss.set(title=f"{title}: training loss", xlabel="epoch")
    ax_accuracy.set(title=f"{title}: validation accuracy", xlabel="epoch", ylim=(0, 1))
    ax_loss.legend(fontsize=8)
    ax_accuracy.legend(fontsize=8)


def main():
    args = _common.parse_args("normalization", __doc__.splitlines()[0])
    import keras

    import kerastrain

    data = _common.digits(args.seed)
    raw = _common.digits(args.seed, standardize=False)
    if args.quick:
        data = ((data[0][0][:256], data[0][1][:256]), data[1])
        raw = ((raw[0][0][:256], raw[0][1][:256]), raw[1])
    epochs, depth, width, batch_size = (1, 2, 16, 128) if args.quick else (20, 6, 64, 32)
    d = data[0][0].shape[1]
    s = args.seed

    batch_norm = {}
    for learning_rate in (1.0,) if args.quick else (0.05, 1.0):
        for use_bn in (True,) if args.quick else (False, True):
            label = f"lr {learning_rate}, {'with' if use_bn else 'without'} batch norm"
            batch_norm[label] = train(deep_mlp(d, depth, width, batch_norm=use_bn),
                                      learning_rate, data, epochs, batch_size, s)
    weight_norm = {
        f"{name}, lr {lr}": train(deep_mlp(d, depth, width, weight_norm=wn), lr, data, epochs,
                                  batch_size, s)
        for lr in (0.05,) for name, wn in (("Dense (Glorot uniform)", False),
                                            ("WeightNormalization(Dense)", True))[args.quick:]
    }

    x_raw = raw[0][0]
    preprocessors = {
        "raw pixels 0..16": lambda: None,
        "MinMaxScaling to [0, 1]": lambda: kerastrain.layers.MinMaxScaling(),
        "z-score (keras Normalization)": lambda: keras.layers.Normalization(),
        "PCA whitening (all components)": lambda: kerastrain.layers.PCA(d, whiten=True,
                                                                         epsilon=1e-2),
        "ZCAWhitening": lambda: kerastrain.layers.ZCAWhitening(epsilon=1e-2),
    }
    whitening = {}
    for label, make in list(preprocessors.items())[4 if args.quick else 0:]:
        layer = make()
        if layer is not None:
            layer.adapt(x_raw)
        whitening[label] = train(deep_mlp(d, 2, width, preprocess=layer, activation="tanh"),
                                 0.01, raw, epochs, batch_size, s)

    plt = _common.pyplot()
    figure, axes = plt.subplots(2, 3, figsize=(16, 9))
    plot_runs(axes[0, 0], axes[1, 0], batch_norm, f"{depth}x{width} ReLU, SGD")
    plot_runs(axes[0, 1], axes[1, 1], weight_norm, f"{depth}x{width} ReLU, SGD")
    plot_runs(axes[0, 2], axes[1, 2], whitening, f"2x{width} tanh, SGD lr 0.01")
    figure.suptitle(f"Digits, {epochs} epochs, batch {batch_size}: batch norm | weight norm "
                    "| input whitening")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
