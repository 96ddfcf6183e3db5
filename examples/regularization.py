"""Regularization: the train/validation gap vs L2 and dropout, early stopping, MC dropout.

Chapter 4.7, on a deliberately small digits training set (300 images) and a
wide MLP that can memorize it:

1. L2 weight penalty (`kerastrain.regularizers.L2`): as the coefficient grows
   the training accuracy falls and the train/validation gap closes, until
   the model underfits;
2. dropout rate: the same trade-off;
3. early stopping (`kerastrain.callbacks.EarlyStopping`): the validation loss
   turns up while the training loss keeps falling; the callback stops after
   `patience` epochs and restores the best weights;
4. Monte-Carlo dropout (`kerastrain.layers.MCDropout` + `mc_predict`): on a
   1-D regression with a gap in the data, the predictive standard deviation
   grows where there is no data.

    python examples/regularization.py
    python examples/regularization.py --quick
"""

import _common
import numpy as np


def classifier(input_dim, width, l2=0.0, dropout=0.0):
    import keras

    import kerastrain

    regularizer = kerastrain.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=(input_dim,))
    h = inputs
    for _ in range(2):
        h = keras.layers.Dense(width, activation="relu", kernel_regularizer=regularizer)(h)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
    outputs = keras.layers.Dense(10, activation="softmax", kernel_regularizer=regularizer)(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=kerastrain.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", "sparse_categorical_crossentropy"])
    return model


def gap(model, data, epochs, seed):
    """Train, then accuracy and cross-entropy (without penalty) on train and validation."""
    import keras

    (x, y), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    train = model.evaluate(x, y, verbose=0, return_dict=True)
    val = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    key = "sparse_categorical_crossentropy"
    return train["accuracy"], val["accuracy"], train[key], val[key]


def sweep_panel(ax, name, values, results):
    train, val, train_loss, val_loss = np.array(results).T
    positions = np.arange(len(values))
    ax.plot(positions, train, "o-", label="train accuracy")
    ax.plot(positions, val, "s-", label="validation accuracy")
    ax.fill_between(positions, val, train, alpha=0.2, label="accuracy gap")
    ax.set_xticks(positions, [f"{v:g}" for v in values])
    ax.set(title=f"{name}: train/validation gap", xlabel=name, ylim=(0, 1.02))
    twin = ax.twinx()
    twin.semilogy(positions, train_loss, "o:", color="C2", label="train cross-entropy")
    twin.semilogy(positions, val_loss, "s:", color="C3", label="validation cross-entropy")
    twin.set_ylabel("cross-entropy (no penalty), dotted")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center left")
    for v, (t, s, tl, vl) in zip(values, results):
        print(f"{name:16s} {v:<8g} accuracy train {t:.3f} validation {s:.3f} gap {t - s:+.3f}; "
              f"cross-entropy train {tl:.4f} validation {vl:.4f}")


def early_stopping_panel(ax, data, width, epochs, seed):
    import keras

    import kerastrain

    (x, y), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    model = classifier(x.shape[1], width)
    stop = kerastrain.callbacks.EarlyStopping(monitor="val_loss", patience=10,
                                              restore_best_weights=True)
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=32,
                        verbose=0, callbacks=[stop]).history
    ax.semilogy(history["loss"], label="training loss")
    ax.semilogy(history["val_loss"], label="validation loss")
    ax.axvline(stop.best_epoch, color="green", linestyle="--",
               label=f"best epoch {stop.best_epoch + 1} (weights restored)")
    if stop.stopped_epoch:
        ax.axvline(stop.stopped_epoch, color="red", linestyle=":",
                   label=f"stopped at epoch {stop.stopped_epoch + 1}")
    ax.set(title="early stopping (patience 10)", xlabel="epoch")
    ax.legend(fontsize=8)
    print(f"early stopping: {stop.stopping_reason} {stop.stopping_message}")


def mc_dropout_panel(ax, epochs, seed):
    import keras

    import kerastrain

    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-4, -1, 60), rng.uniform(1.5, 4, 60)]).astype("float32")
    y = (np.sin(x) + 0.1 * rng.standard_normal(x.shape)).astype("float32")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(128, activation="relu"), kerastrain.layers.MCDropout(0.2),
        keras.layers.Dense(128, activation="relu"), kerastrain.layers.MCDropout(0.2),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=kerastrain.optimizers.Adam(3e-3), loss="mse")
    model.fit(x[:, None], y[:, None], epochs=epochs, batch_size=32, verbose=0)
    grid = np.linspace(-7, 7, 281, dtype="float32")[:, None]
    mean, std = kerastrain.layers.mc_predict(model, grid, samples=50)
    mean, std = mean[:, 0], std[:, 0]
    ax.plot(x, y, "k.", markersize=4, label="training data")
    ax.plot(grid[:, 0], np.sin(grid[:, 0]), "k:", linewidth=1, label="sin(x)")
    ax.plot(grid[:, 0], mean, label="MC-dropout mean (50 passes)")
    ax.fill_between(grid[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.3, label="± 2 std")
    ax.set(title="MC dropout: predictive uncertainty", xlabel="x", ylim=(-3, 3))
    ax.legend(fontsize=8, loc="lower left")
    inside = np.abs(grid[:, 0] - 2.5) < 1.0
    gap_region = np.abs(grid[:, 0] - 0.25) < 0.5
    outside = np.abs(grid[:, 0]) > 5.5
    print(f"MC dropout std: in data {std[inside].mean():.3f}, in the gap "
          f"{std[gap_region].mean():.3f}, far outside {std[outside].mean():.3f}")


def main():
    args = _common.parse_args("regularization", __doc__.splitlines()[0])
    quick = args.quick
    data = _common.digits(args.seed, train_size=300)
    width, epochs = (32, 2) if quick else (512, 60)
    l2_values = [1e-2] if quick else [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    dropout_values = [0.5] if quick else [0.0, 0.2, 0.4, 0.6, 0.8, 0.9]
    d = data[0][0].shape[1]
    s = args.seed
    l2_results = [gap(classifier(d, width, l2=v), data, epochs, s) for v in l2_values]
    dropout_results = [gap(classifier(d, width, dropout=v), data, epochs, s)
                       for v in dropout_values]
    plt = _common.pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    sweep_panel(axes[0, 0], "L2 coefficient", l2_values, l2_results)
    sweep_panel(axes[0, 1], "dropout rate", dropout_values, dropout_results)
    early_stopping_panel(axes[1, 0], data, width, 3 if quick else 200, s)
    mc_dropout_panel(axes[1, 1], 2 if quick else 300, s)
    figure.suptitle(f"Digits with 300 training images, MLP 2x{width}, Adam 1e-3, "
                    f"{epochs} epochs (sweeps)")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
