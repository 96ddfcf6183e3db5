"""Monitoring: a bad initialization kills the ReLUs, and the standard callbacks say so.

Chapter "watch every layer": the same 4-layer ReLU MLP on digits is trained
twice with `kerastrain.callbacks.monitor(...)` (gradient norms, update
ratios, learning rate, weight/gradient/activation histograms, dead-ReLU
detection) writing TensorBoard logs. In the bad run the hidden layers start
with a bias of −1 and N(0, 0.01) kernels, so every pre-activation is negative:
the ReLUs output 0 for every input, no gradient flows to the hidden layers,
and `DeadReLUDetector` warns with its remedies. The good run uses He init and
a small positive bias (`ReLUBias`). The figure is drawn from ``History``,
where the callbacks also put their scalars.

    python examples/monitoring.py --log-dir /tmp/monitoring
    tensorboard --logdir /tmp/monitoring      # scalars, histograms, per layer
    python examples/monitoring.py --quick
"""

import textwrap
import warnings

import _common
import numpy as np


def model(bad, width, depth, seed):
    import keras

    import kerastrain.initializers as ki

    if bad:
        kernel, bias = ki.RandomNormal(stddev=0.01, seed=seed), keras.initializers.Constant(-1.0)
    else:
        kernel, bias = ki.HeNormal(seed=seed), ki.ReLUBias(0.01)
    inputs = keras.Input(shape=(64,))
    h = inputs
    for i in range(depth):
        h = keras.layers.Dense(width, activation="relu", kernel_initializer=kernel,
                               bias_initializer=bias, name=f"hidden_{i + 1}")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="output")(h)
    return keras.Model(inputs, outputs)


def run(label, bad, args, data, epochs, width, depth):
    import keras

    import kerastrain

    (x, y), (x_val, y_val) = data
    keras.utils.set_random_seed(args.seed)
    net = model(bad, width, depth, args.seed)
    net.compile(optimizer=kerastrain.optimizers.SGD(0.05, momentum=0.9),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    log_dir = f"{args.log_dir}/{label}"
    callbacks = kerastrain.callbacks.monitor(log_dir, (x[:256], y[:256]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = net.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=64,
                          verbose=0, callbacks=callbacks).history
    messages = [str(w.message) for w in caught
                if str(w.message).startswith(("DeadReLUDetector", "GradientNormLogger"))]
    for message in messages:
        print(f"[{label}] warning: {message}")
    print(f"[{label}] TensorBoard logs in {log_dir}; logged keys: "
          + ", ".join(sorted(k for k in history if "/" in k)[:8]) + ", ...")
    return history, messages


def main():
    args = _common.parse_args("monitoring", __doc__.splitlines()[0], log_dir=True)
    data = _common.digits(args.seed)
    epochs, width, depth = (2, 16, 2) if args.quick else (15, 64, 4)
    if args.quick:
        data = ((data[0][0][:256], data[0][1][:256]), data[1])
    runs = {name: run(name, bad, args, data, epochs, width, depth)
            for name, bad in (("bad_init", True), ("good_init", False))}

    plt = _common.pyplot()
    figure, axes = plt.subplots(2, 3, figsize=(16, 9))
    styles = {"bad_init": "-", "good_init": "--"}
    for name, (history, _) in runs.items():
        epochs_axis = np.arange(1, len(history["loss"]) + 1)
        for key in sorted(history):
            if key.startswith("dead_relu_fraction/"):
                axes[0, 0].plot(epochs_axis, history[key], styles[name], marker="o",
                                label=f"{name}: {key.split('/', 1)[1]}")
            if key.startswith("gradient_norm/") and key != "gradient_norm/global":
                axes[0, 1].semilogy(epochs_axis, np.maximum(history[key], 1e-12), styles[name],
                                    label=f"{name}: {key.split('/', 1)[1]}")
            if key.startswith("update_ratio/") and key.endswith("kernel"):
                axes[0, 2].semilogy(epochs_axis, np.maximum(history[key], 1e-12),
                                    styles[name], label=f"{name}: {key.split('/', 1)[1]}")
        axes[1, 0].plot(epochs_axis, history["loss"], styles[name], label=name)
        axes[1, 1].plot(epochs_axis, history["val_accuracy"], styles[name], label=name)
    axes[0, 0].set(title="dead ReLU fraction per layer (DeadReLUDetector)", xlabel="epoch",
                   ylim=(-0.05, 1.05))
    axes[0, 1].set(title="gradient norm per layer (GradientNormLogger; 0 drawn at 1e-12)", xlabel="epoch")
    axes[0, 2].set(title="update/weight ratio per kernel (0 drawn at 1e-12)", xlabel="epoch")
    axes[1, 0].set(title="training loss", xlabel="epoch")
    axes[1, 1].set(title="validation accuracy", xlabel="epoch", ylim=(0, 1))
    for ax in axes.ravel()[:5]:
        ax.legend(fontsize=7)
    firsts = {}
    for message in runs["bad_init"][1]:
        firsts.setdefault(message.split(":")[0], message)
    text = "\n\n".join("\n".join(textwrap.wrap(m, 62)) for m in firsts.values())
    axes[1, 2].axis("off")
    axes[1, 2].text(0, 1, "Warnings of the bad_init run (first of each kind):\n\n"
                    + (text or "(no warning raised)"), va="top", fontsize=8.5,
                    family="monospace", transform=axes[1, 2].transAxes)
    figure.suptitle(f"Digits, {depth}x{width} ReLU MLP, SGD momentum: bias −1 and N(0, 0.01) "
                    "kernels (solid) vs He + ReLUBias(0.01) (dashed)")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
