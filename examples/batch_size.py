"""Batch size: time per epoch and validation accuracy from batch size 1 to the full batch.

Chapter 4.2 (minibatch SGD): small batches give noisy gradients and many
cheap updates per epoch, but an epoch takes longer (less parallelism); large
batches give accurate gradients, fast epochs, few updates. The same MLP is
trained on digits with plain SGD for the same number of epochs at each batch
size. Keskar et al. (2017) add that large-batch training tends to end in
sharper minima: we measure the largest Hessian eigenvalue of the training loss
(`kerastrain.diagnostics.hessian_eigenvalues`, Lanczos) at each solution, and
Keskar's ε-box sharpness (`sharpness`), and evaluate the loss along the
straight line between a small-batch and a large-batch solution (`interpolate`).

    python examples/batch_size.py
    python examples/batch_size.py --quick
"""

import time

import _common
import numpy as np


class EpochTimer:
    """A Keras callback recording the wall time of every epoch's training steps."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = self._end = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self._end = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):  # training steps only, not validation
                self.times.append(self._end - self._start)

        return _Timer()


def train(batch_size, data, epochs, width, learning_rate, seed):
    import keras

    import kerastrain

    (x, y), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    model = _common.mlp(x.shape[1], (width,))
    model.compile(optimizer=kerastrain.optimizers.SGD(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs,
                        batch_size=batch_size, verbose=0, callbacks=[timer]).history
    # the first epoch includes tracing/compilation: report the median of the others
    seconds = float(np.median(timer.times[1:] if len(timer.times) > 1 else timer.times))
    return model, history, seconds


def main():
    args = _common.parse_args("batch_size", __doc__.splitlines()[0])
    import kerastrain

    data = _common.digits(args.seed)
    if args.quick:
        data = ((data[0][0][:256], data[0][1][:256]), data[1])
    n = len(data[0][0])
    sizes = [16, n] if args.quick else [1, 4, 16, 64, 256, n]
    epochs, width = (2, 16) if args.quick else (20, 64)
    results = {}
    for batch_size in sizes:
        model, history, seconds = train(batch_size, data, epochs, width, 0.05, args.seed)
        top = kerastrain.diagnostics.hessian_eigenvalues(
            model, data[0][0], data[0][1], k=1, max_iterations=10 if args.quick else 40,
            seed=args.seed)
        keskar = kerastrain.diagnostics.sharpness(
            model, data[0][0], data[0][1], epsilon=1e-3, max_iterations=3 if args.quick else 10,
            seed=args.seed)
        results[batch_size] = (model, history, seconds, top.eigenvalues[0], keskar.sharpness)
        updates = -(-n // batch_size)
        print(f"batch {batch_size:5d}: {seconds * 1e3:8.1f} ms/epoch, {updates:5d} updates/epoch"
              f", val_accuracy {history['val_accuracy'][-1]:.4f}, train loss "
              f"{history['loss'][-1]:.4f}, largest Hessian eigenvalue {top.eigenvalues[0]:.4g}, "
              f"Keskar sharpness {keskar.sharpness:.4g}%")

    plt = _common.pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    seconds = [results[b][2] for b in sizes]
    axes[0, 0].loglog(sizes, seconds, "o-")
    axes[0, 0].set(title="wall time of an epoch's training steps (median)", xlabel="batch size",
                   ylabel="seconds")
    for b in sizes:
        history = results[b][1]
        axes[0, 1].plot(np.arange(1, epochs + 1), history["val_accuracy"], marker=".",
                        label=f"batch {b} ({history['val_accuracy'][-1]:.3f})")
    axes[0, 1].set(title=f"validation accuracy, SGD lr 0.05, {epochs} epochs", xlabel="epoch",
                   ylim=(0, 1))
    axes[0, 1].legend(fontsize=8)
    axes[1, 0].semilogx(sizes, [results[b][3] for b in sizes], "o-", color="C3",
                        label="largest Hessian eigenvalue (Lanczos)")
    twin = axes[1, 0].twinx()
    twin.semilogx(sizes, [results[b][4] for b in sizes], "s--", color="C4",
                  label="Keskar sharpness, ε = 1e-3 (%)")
    axes[1, 0].set(title="sharpness of the training loss at each solution", xlabel="batch size")
    handles = [h for ax in (axes[1, 0], twin) for h in ax.get_legend_handles_labels()[0]]
    axes[1, 0].legend(handles, [h.get_label() for h in handles], fontsize=8)
    # the full-batch run is far from converged after the same epochs: interpolate
    # between two trained solutions, a small (16) and a large (256) batch
    small, large = (sizes[0], sizes[-1]) if args.quick else (16, 256)
    alphas = np.linspace(-0.5, 1.5, 5 if args.quick else 41)
    path = kerastrain.diagnostics.interpolate(
        results[small][0], results[large][0], data[0][0], data[0][1], num_points=len(alphas),
        start=alphas[0], end=alphas[-1], validation_data=data[1])
    print(path)
    axes[1, 1].semilogy(path.alphas, path.losses, label="training loss")
    axes[1, 1].semilogy(path.alphas, path.validation_losses, label="validation loss")
    axes[1, 1].set(title=f"(1 − α)·θ(batch {small}) + α·θ(batch {large})", xlabel="α")
    axes[1, 1].axvline(0, color="grey", linewidth=0.5)
    axes[1, 1].axvline(1, color="grey", linewidth=0.5)
    axes[1, 1].legend(fontsize=8)
    figure.suptitle(f"Digits, MLP 64-{width}-10, plain SGD: the batch-size trade-off "
                    "(2-core shared CPU, TensorFlow backend timings)")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
