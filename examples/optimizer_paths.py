"""Optimizers on a saddle and a ravine: trajectories of the chapter's update rules.

Two 2-D losses (chapter 4.2): the saddle f = x² − y², started just off the
ridge, where plain gradient steps stall near the saddle point while adaptive and
momentum methods (and the saddle-free second-order step, which uses |H|)
escape down the −y² direction; and the ill-conditioned quadratic
f = x²/20 + y², a ravine where SGD (at a learning rate near 1/L) zig-zags across the steep direction and
crawls along the flat one, momentum accelerates along the valley, and
Adagrad/RMSprop/Adam equalize the two scales.

Every optimizer runs through `model.train_on_batch` on a one-weight "model"
whose output is f(w), so this is exactly what `model.fit` would do.

    python examples/optimizer_paths.py
    python examples/optimizer_paths.py --quick
"""

import _common
import numpy as np


def saddle(x, y):
    return x**2 - y**2


def ravine(x, y):
    return x**2 / 20.0 + y**2


# title: (f, start, (xlim, ylim), steps, SGD learning rate, quick steps)
PROBLEMS = {
    "saddle f = x² − y²": (saddle, (1.0, 1e-3), ((-1.3, 1.3), (-1.2, 1.2)), 30, 0.1),
    "ravine f = x²/20 + y²": (ravine, (-8.0, 1.5), ((-9.0, 2.0), (-2.0, 2.0)), 60, 0.9),
}


def optimizers(sgd_learning_rate):
    """(label, factory) pairs; each factory returns a fresh optimizer."""
    import kerastrain.optimizers as ko

    candidates = [
        (f"SGD (lr {sgd_learning_rate})", lambda: ko.SGD(learning_rate=sgd_learning_rate)),
        ("momentum", lambda: ko.SGD(learning_rate=0.1, momentum=0.9)),
        ("Nesterov", lambda: ko.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
        ("Adagrad", lambda: ko.Adagrad(learning_rate=0.5)),
        ("Adadelta", lambda: ko.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6)),
        ("RMSprop", lambda: ko.RMSprop(learning_rate=0.05)),
        ("Adam", lambda: ko.Adam(learning_rate=0.1)),
    ]
    second_order = getattr(ko, "HessianFree", None)
    if second_order is not None:
        candidates.append(("saddle-free Newton", lambda: second_order(
            learning_rate=1.0, damping=0.1, cg_iterations=2, saddle_free=True)))
    return candidates


def mean_output(y_true, y_pred):
    """The loss: the model's output itself, f(w)."""
    from keras import ops

    return ops.mean(y_pred)


def trajectory(function, start, optimizer, steps):
    """Positions after each `train_on_batch` step of a model whose output is f(w)."""
    import keras
    from keras import ops

    import kerastrain.optimizers

    class Point(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(2,), initializer=keras.initializers.Constant(start),
                                     name="w")

        def call(self, inputs):
            value = function(self.w[0], self.w[1])
            return ops.zeros_like(inputs) + value

    inputs = keras.Input(shape=(1,))
    model = keras.Model(inputs, Point()(inputs))
    model.compile(optimizer=optimizer, loss=mean_output)
    kerastrain.optimizers.prepare(model)  # lets HessianFree see the loss; a no-op for the rest
    one = np.ones((1, 1), "float32")
    path = [np.array(start)]
    for _ in range(steps):
        model.train_on_batch(one, one)
        path.append(np.asarray(model.layers[-1].w.numpy(), dtype="float64"))
    return np.array(path)


def main():
    args = _common.parse_args("optimizer_paths", __doc__.splitlines()[0])
    import kerastrain.optimizers

    plt = _common.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(14, 6))
    colors = plt.get_cmap("tab10").colors
    if not hasattr(kerastrain.optimizers, "HessianFree"):
        print("note: kerastrain.optimizers exports no HessianFree: saddle-free step left out")
    for ax, (title, problem) in zip(axes, PROBLEMS.items()):
        function, start, (xlim, ylim), steps, sgd_learning_rate = problem
        steps = 3 if args.quick else steps
        gx, gy = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
        ax.contour(gx, gy, function(gx, gy), levels=25, cmap="Greys", linewidths=0.6)
        for color, (label, factory) in zip(colors, optimizers(sgd_learning_rate)):
            path = trajectory(function, start, factory(), steps)
            final = function(*path[-1])
            print(f"{title:24s} {label:20s} final (x, y) = ({path[-1][0]:.3g}, "
                  f"{path[-1][1]:.3g}), f = {final:.4g}")
            ax.plot(path[:, 0], path[:, 1], "-", color=color, marker=".", markersize=3,
                    linewidth=1.2, label=f"{label} (f={final:.2g})")
        ax.plot(*start, "k*", markersize=12)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_title(f"{title}, {steps} steps from {start}")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.legend(fontsize=8, loc="lower left")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
