"""Initialization scale: activations of a 10-layer network under five initializations.

The cs231n experiment (chapter 4.3): feed unit-Gaussian data through 10 tanh
layers and look at each layer's activations. N(0, 0.01) weights shrink them
to 0 layer after layer, N(0, 1) saturates tanh at ±1, Xavier keeps them
spread, LSUV (data-dependent) rescales every layer to unit pre-activation
variance. With ReLU, He keeps the scale while Xavier halves the variance per layer.

    python examples/init_scale.py            # 10 layers x 500 units
    python examples/init_scale.py --quick    # CI smoke run
"""

import _common
import numpy as np


def build(initializer, depth, width, activation):
    import keras

    inputs = keras.Input(shape=(width,))
    h, outputs = inputs, []
    for i in range(depth):
        h = keras.layers.Dense(width, activation=activation, kernel_initializer=initializer,
                               name=f"dense_{i + 1}")(h)
        outputs.append(h)
    return keras.Model(inputs, outputs)


def activations(initializer, x, depth, activation, seed):
    """Per-layer activations; ``initializer == "lsuv"`` runs `kerastrain.initializers.lsuv`."""
    import kerastrain

    init = kerastrain.initializers.Orthogonal(seed=seed) if initializer == "lsuv" else initializer
    model = build(init, depth, x.shape[1], activation)
    if initializer == "lsuv":
        kerastrain.initializers.lsuv(model, x, seed=seed)
    return [np.asarray(a) for a in model.predict(x, verbose=0)]


def main():
    args = _common.parse_args("init_scale", __doc__.splitlines()[0])
    import kerastrain.initializers as ki

    depth, width, samples = (4, 64, 128) if args.quick else (10, 500, 1000)
    x = np.random.default_rng(args.seed).standard_normal((samples, width)).astype("float32")
    s = args.seed
    runs = [
        ("tanh", "N(0, 0.01)", ki.RandomNormal(stddev=0.01, seed=s)),
        ("tanh", "N(0, 1)", ki.RandomNormal(stddev=1.0, seed=s)),
        ("tanh", "Xavier (Glorot normal)", ki.XavierNormal(seed=s)),
        ("tanh", "He normal", ki.HeNormal(seed=s)),
        ("tanh", "LSUV", "lsuv"),
        ("relu", "Xavier (Glorot normal)", ki.XavierNormal(seed=s)),
        ("relu", "He normal", ki.HeNormal(seed=s)),
    ]
    plt = _common.pyplot()
    from matplotlib.colors import LogNorm

    figure, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    axes = axes.ravel()
    for panel, (activation, label, initializer) in enumerate(runs):
        layers = activations(initializer, x, depth, activation, s)
        stds = [a.std() for a in layers]
        bounds = (-1.0, 1.0) if activation == "tanh" else (0.0, max(np.percentile(layers[0], 99), 1e-3))
        bins = np.linspace(*bounds, 41)
        image = np.stack([np.histogram(np.clip(a, *bounds), bins=bins)[0] / a.size for a in layers], 1)
        ax = axes[panel]
        ax.imshow(np.maximum(image, 1e-4), origin="lower", aspect="auto", cmap="magma",
                  norm=LogNorm(vmin=1e-3, vmax=1.0), extent=(0.5, depth + 0.5, *bounds))
        ax.set_title(f"{activation}, {label}", fontsize=10)
        ax.set_xlabel("layer")
        ax.set_ylabel("activation (colour: share per bin, log)", fontsize=8)
        axes[-1].semilogy(range(1, depth + 1), stds, marker="o", label=f"{activation}, {label}",
                          linestyle="-" if activation == "tanh" else "--")
        print(f"{activation:5s} {label:24s} std per layer: " + " ".join(f"{v:.3g}" for v in stds))
    axes[-1].set_title("standard deviation of activations", fontsize=10)
    axes[-1].set_xlabel("layer")
    axes[-1].legend(fontsize=7)
    figure.suptitle(f"Activations of a {depth}-layer x {width}-unit network on unit-Gaussian "
                    "inputs (columns: histogram of each layer)")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
