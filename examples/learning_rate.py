"""Learning rate: the LR range test, and training under the chapter's schedules.

Chapter 4.2: find the largest learning rate that does not blow up (Smith's
range test: raise the rate exponentially for one short run and watch the
loss), then decay it. The same MLP on digits is trained with SGD + momentum
under a constant rate and under step, exponential α0·e^(−kt), inverse-time
α0/(1+kt), triangular cyclical, SGDR (warm restarts) and one-cycle schedules.

    python examples/learning_rate.py --log-dir /tmp/lr   # then: tensorboard --logdir /tmp/lr
    python examples/learning_rate.py --quick
"""

import _common
import numpy as np


def schedules(peak, steps_per_epoch, epochs):
    import kerastrain.schedules as ks

    total = steps_per_epoch * epochs
    return {
        "constant": ks.Constant(peak),
        "step (÷10 at 1/2, 3/4)": ks.MultiStepDecay(peak, [total // 2, 3 * total // 4], gamma=0.1),
        "exponential α0·e^(−kt)": ks.NaturalExponentialDecay(peak, decay_rate=4.0,
                                                            decay_steps=total),
        "1/t α0/(1+kt)": ks.InverseTimeDecay(peak, decay_rate=10.0, decay_steps=total),
        "triangular cyclical": ks.TriangularCyclicalLearningRate(
            peak / 10, peak, step_size=max(total // 6, 1)),
        "SGDR (T0, ×2)": ks.SGDR(peak, first_decay_steps=max(total // 7, 1), t_mul=2.0),
        "one-cycle": ks.OneCycle(peak, total_steps=total),
    }


def range_test_panel(ax, x, y, model_factory, num_steps):
    """The LR range test, if the diagnostics package provides it."""
    import kerastrain.diagnostics as kd

    if not hasattr(kd, "lr_range_test"):
        message = "kerastrain.diagnostics.lr_range_test\nis not available in this version"
        print("note: " + message.replace("\n", " "))
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        ax.set_title("LR range test")
        return None
    model = model_factory()
    result = kd.lr_range_test(model, x, y, start_lr=1e-4, end_lr=10.0, num_steps=num_steps,
                              batch_size=64, seed=0)
    print(result)
    ax.semilogx(result.learning_rates, result.losses, color="lightgray", label="batch loss")
    ax.semilogx(result.learning_rates, result.smoothed_losses, label="smoothed loss")
    for (name, value), color in zip(result.suggestions.items(), ("C2", "C1", "C4", "C3")):
        ax.axvline(value, color=color, linestyle="--", label=f"{name}: {value:.2g}")
    finite = result.smoothed_losses[np.isfinite(result.smoothed_losses)]
    ax.set_ylim(0, 1.5 * float(finite[0]) if finite.size else None)  # the blow-up is off-scale
    ax.set(title="LR range test (SGD momentum 0.9, batch 64)",
           xlabel="learning rate", ylabel="training loss")
    ax.legend(fontsize=8)
    return result


def main():
    args = _common.parse_args("learning_rate", __doc__.splitlines()[0], log_dir=True)
    import keras

    import kerastrain

    (x, y), (x_val, y_val) = _common.digits(args.seed)
    epochs, batch_size, units = (2, 256, (16,)) if args.quick else (30, 64, (128, 64))
    if args.quick:
        x, y = x[:512], y[:512]
    steps_per_epoch = int(np.ceil(len(x) / batch_size))
    peak = 0.2

    def model_factory(schedule=1e-3):
        keras.utils.set_random_seed(args.seed)
        model = _common.mlp(x.shape[1], units)
        model.compile(optimizer=kerastrain.optimizers.SGD(schedule, momentum=0.9),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    plt = _common.pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    range_test_panel(axes[0, 0], x, y, model_factory, 20 if args.quick else 100)
    total = steps_per_epoch * epochs
    colors = plt.get_cmap("tab10").colors
    candidates = list(schedules(peak, steps_per_epoch, epochs).items())
    if args.quick:
        candidates = candidates[1::3]
    for color, (label, schedule) in zip(colors, candidates):
        model = model_factory(schedule)
        log_dir = f"{args.log_dir}/{label.split()[0].replace('/', '_')}"
        history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs,
                            batch_size=batch_size, verbose=0,
                            callbacks=[kerastrain.callbacks.LearningRateLogger(log_dir)])
        h = history.history
        print(f"{label:24s} final loss {h['loss'][-1]:.4f}  val_accuracy "
              f"{h['val_accuracy'][-1]:.4f}  best val_accuracy {max(h['val_accuracy']):.4f}")
        steps = np.arange(total)
        axes[0, 1].plot(steps / steps_per_epoch, kerastrain.schedules.values(schedule, steps),
                        color=color, label=label)
        epochs_axis = np.arange(1, epochs + 1)
        axes[1, 0].semilogy(epochs_axis, h["loss"], color=color, label=label)
        axes[1, 1].plot(epochs_axis, h["val_accuracy"], color=color,
                        label=f"{label} ({h['val_accuracy'][-1]:.3f})")
    axes[0, 1].set(title=f"learning rate (peak {peak}, SGD momentum 0.9)", xlabel="epoch")
    axes[1, 0].set(title="training loss", xlabel="epoch")
    axes[1, 1].set(title="validation accuracy (final)", xlabel="epoch",
                   ylim=(0.85, 1.0) if not args.quick else None)
    for ax in axes.ravel()[1:]:
        ax.legend(fontsize=8)
    figure.suptitle(f"Digits, MLP {units}, batch {batch_size}, {epochs} epochs")
    print(f"TensorBoard logs (learning rate per step): {args.log_dir}")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
