"""Critical points: the Hessian spectrum early vs late in training, and loss landscapes.

Chapter 4.2 (saddle points; Dauphin et al. 2014): in high dimension most
critical points with high loss are saddles, and as training goes down the
loss the fraction of negative Hessian eigenvalues shrinks. We train a small
MLP on digits and, at several epochs, estimate the Hessian's eigenvalue
density by stochastic Lanczos quadrature
(`kerastrain.diagnostics.hessian_density`, float64) and classify the final
point (`critical_point`). Then the loss landscape of a deep network with and
without skip connections (Li et al. 2018), if
`kerastrain.diagnostics.loss_landscape_2d` is available.

    python examples/critical_points.py
    python examples/critical_points.py --quick
"""

import _common
import numpy as np


def small_mlp(width, seed):
    import keras

    import kerastrain

    keras.utils.set_random_seed(seed)
    model = _common.mlp(64, (width,), activation="tanh")
    model.compile(optimizer=kerastrain.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    return model


def residual_mlp(depth, width, skip, seed):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(64,))
    h = keras.layers.Dense(width, activation="relu")(inputs)
    for _ in range(depth):
        block = keras.layers.Dense(width, activation="relu")(h)
        block = keras.layers.Dense(width)(block)
        h = keras.layers.Activation("relu")(keras.layers.Add()([h, block]) if skip else block)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def spectrum_panels(ax_density, ax_fraction, data, checkpoints, width, quick, seed):
    import kerastrain

    (x, y), _ = data
    model = small_mlp(width, seed)
    trained, fractions, significant, losses = 0, [], [], []
    for epoch in checkpoints:
        if epoch > trained:
            model.fit(x, y, epochs=epoch - trained, batch_size=64, verbose=0)
            trained = epoch
        loss = float(model.evaluate(x, y, verbose=0))
        density = kerastrain.diagnostics.hessian_density(
            model, x, y, num_runs=2 if quick else 5, num_iterations=10 if quick else 60,
            seed=seed)
        # all Ritz values below 0, and (density.signs) those below -1 % of max|lambda|:
        # the clearly negative directions, as the diagnostics count them
        nodes, weights = np.asarray(density.nodes), np.asarray(density.weights)
        fractions.append(weights[nodes < 0].sum() / weights.sum())
        significant.append(density.signs.negative)
        losses.append(loss)
        print(f"epoch {epoch:4d}: training loss {loss:.4f}; {density}")
        ax_density.semilogy(density.grid, np.maximum(density.density, 1e-8),
                            label=f"epoch {epoch} (loss {loss:.3g}, λ_min≈{nodes.min():.2g})")
    ax_density.set(title=f"Hessian eigenvalue density (SLQ), MLP 64-{width}-10, "
                   f"{model.count_params()} weights", xlabel="eigenvalue", ylim=(1e-6, None))
    ax_density.legend(fontsize=8)
    ax_fraction.plot(losses, fractions, "o-", label="all negative (SLQ density below 0)")
    ax_fraction.plot(losses, significant, "s--", label="below −1 % of λ_max (SLQ weights)")
    ax_fraction.legend(fontsize=8, loc="upper left")
    for epoch, loss, fraction in zip(checkpoints, losses, fractions):
        ax_fraction.annotate(f"epoch {epoch}", (loss, fraction), fontsize=8,
                             textcoords="offset points", xytext=(4, 4))
    ax_fraction.set(title="fraction of negative eigenvalues vs training loss",
                    xlabel="training loss", ylabel="fraction negative", xscale="log")
    point = kerastrain.diagnostics.critical_point(
        model, x, y, num_runs=2 if quick else 3, num_iterations=10 if quick else 40,
        max_iterations=10 if quick else 60, seed=seed)
    print(point)
    ax_fraction.text(0.02, 0.02, f"final point: {point.kind}\n‖g‖ = {point.gradient_norm:.2g}, "
                     f"λ_min = {point.min_eigenvalue:.2g}, λ_max = {point.max_eigenvalue:.2g}",
                     transform=ax_fraction.transAxes, fontsize=8)


def landscape_panels(axes, data, depth, width, epochs, quick, seed):
    import kerastrain.diagnostics as kd

    if not hasattr(kd, "loss_landscape_2d"):
        message = "kerastrain.diagnostics.loss_landscape_2d\nis not available in this version"
        print("note: " + message.replace("\n", " "))
        for ax in axes:
            ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return
    (x, y), _ = data
    for ax, skip in zip(axes, (False, True)):
        model = residual_mlp(depth, width, skip, seed)
        model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
        result = kd.loss_landscape_2d(model, x, y, distance=1.0,
                                      num_points=5 if quick else 25, seed=seed)
        print(f"{'with' if skip else 'without'} skip connections: {result}")
        draw_landscape(ax, result)
        ax.set_title(f"{2 * depth + 2}-layer MLP {'with' if skip else 'without'} skip connections")


def draw_landscape(ax, result):
    """Contours of a `LossLandscape2D` (``losses`` is ``(len(betas), len(alphas))``)."""
    alphas, betas = np.asarray(result.alphas), np.asarray(result.betas)
    losses = np.log10(np.maximum(np.asarray(result.losses, dtype="float64"), 1e-12))
    contours = ax.contourf(alphas, betas, losses, levels=30, cmap="viridis")
    ax.figure.colorbar(contours, ax=ax, label="log10 loss")
    ax.plot(0, 0, "r*")
    ax.set(xlabel="direction 1 (filter-normalized)", ylabel="direction 2")


def main():
    args = _common.parse_args("critical_points", __doc__.splitlines()[0])
    data = _common.digits(args.seed, train_size=128 if args.quick else 500)
    checkpoints = [0, 1] if args.quick else [0, 1, 3, 10, 30, 100]
    plt = _common.pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(13, 10))
    spectrum_panels(axes[0, 0], axes[0, 1], data, checkpoints, 8 if args.quick else 16,
                    args.quick, args.seed)
    landscape_panels(axes[1], data, 2 if args.quick else 8, 16 if args.quick else 32,
                     1 if args.quick else 30, args.quick, args.seed)
    figure.suptitle("Digits: the loss surface of small networks")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
