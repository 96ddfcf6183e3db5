"""Gallery of every kerastrain learning-rate schedule (the README's figure).

Chapter 4.2, learning-rate decay: step, multi-step and hand-set staircases,
linear, exponential α0·e^(−kt), inverse-time α0/(1+kt); cyclical rates
(Smith 2017); cosine annealing with warm restarts (SGDR); one-cycle (Smith
2018) with its inverse momentum cycle; warmup and sequencing; and a schedule
scaled down by plateau reduction. Each panel is drawn by
`kerastrain.schedules.plot`.

    python examples/schedules_gallery.py            # writes examples/figures/schedules.png
    python examples/schedules_gallery.py --quick    # fewer steps, same panels, temporary file
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FIGURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures", "schedules.png")


def panels(total):
    """``[(title, {label: schedule}), ...]``: one panel per family of schedules."""
    import keras

    import kerastrain.schedules as ks

    quarter, tenth = total // 4, max(total // 10, 1)
    one_cycle = ks.OneCycle(0.1, total)
    return [
        ("step decays", {
            "StepDecay(γ=0.5)": ks.StepDecay(0.1, step_size=quarter, gamma=0.5),
            "MultiStepDecay": ks.MultiStepDecay(0.1, [total // 2, 3 * total // 4]),
            "PiecewiseConstant": ks.PiecewiseConstant([tenth, total // 3],
                                                      [0.02, 0.08, 0.03]),
        }),
        ("smooth decays", {
            "LinearDecay": ks.LinearDecay(0.1, 0.005, decay_steps=total),
            "NaturalExponentialDecay α0·e^(−kt)": ks.NaturalExponentialDecay(
                0.1, decay_rate=3.0, decay_steps=total),
            "InverseTimeDecay α0/(1+kt)": ks.InverseTimeDecay(
                0.1, decay_rate=10.0, decay_steps=total),
        }),
        ("cyclical (Smith 2017)", {
            "triangular": ks.TriangularCyclicalLearningRate(0.01, 0.1, step_size=tenth),
            "triangular2": ks.Triangular2CyclicalLearningRate(0.01, 0.1, step_size=tenth),
            "exp_range": ks.ExponentialCyclicalLearningRate(
                0.01, 0.1, step_size=tenth, gamma=0.05 ** (1.0 / total)),
        }),
        ("SGDR warm restarts", {
            "t_mul=2": ks.SGDR(0.1, first_decay_steps=total // 15, t_mul=2.0),
            "t_mul=1, m_mul=0.8, alpha=0.1": ks.SGDR(0.1, total // 5, t_mul=1.0, m_mul=0.8,
                                                     alpha=0.1),
            "warmup per cycle": ks.SGDR(0.1, total // 3, t_mul=1.0,
                                        warmup_steps=total // 20),
        }),
        ("one-cycle (Smith 2018)", {
            "OneCycle (cos)": one_cycle,
            "three_phase, linear": ks.OneCycle(0.1, total, anneal_strategy="linear",
                                               three_phase=True),
            "momentum ÷10 (OneCycleMomentum)": ks.Scaled(one_cycle.momentum_schedule(),
                                                         factor=0.1),
        }),
        ("composition and plateau", {
            "Warmup(linear) + Keras CosineDecay": ks.Warmup(
                keras.optimizers.schedules.CosineDecay(0.1, total - tenth), tenth),
            "Sequence[Warmup(exp), SGDR]": ks.Sequence(
                [ks.Warmup(0.1, tenth, initial_learning_rate=1e-3, mode="exponential"),
                 ks.SGDR(0.1, total // 4, t_mul=1.0)], boundaries=[tenth]),
            "Scaled(SGDR, ×0.5)": ks.Scaled(ks.SGDR(0.1, total // 4, t_mul=1.0), factor=0.5),
        }),
    ]


def main():
    parser = argparse.ArgumentParser(prog="examples/schedules_gallery.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="200 steps instead of 2000 (for CI); same panels")
    parser.add_argument("--figure", default=None,
                        help="PNG to write (default: examples/figures/schedules.png; with "
                             "--quick a new temporary directory, so the committed figure stays)")
    args = parser.parse_args()
    if args.figure is None:
        args.figure = (os.path.join(tempfile.mkdtemp(prefix="kerastrain-schedules-"),
                                    "schedules.png") if args.quick else FIGURE)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerastrain.schedules import plot, values

    total = 200 if args.quick else 2000
    layout = panels(total)
    figure, axes = plt.subplots(2, 3, figsize=(15, 7.5), constrained_layout=True)
    marks = [0, total // 4, total // 2, total - 1]
    print(f"{'schedule':<40}" + "".join(f"{'step ' + str(step):>12}" for step in marks))
    for ax, (title, curves) in zip(axes.flat, layout):
        plot(curves, total, ax=ax, title=title)
        for label, schedule in curves.items():
            rates = values(schedule, total)[marks]
            print(f"{label:<40}" + "".join(f"{rate:>12.5g}" for rate in rates))
    figure.suptitle(f"kerastrain.schedules over {total} steps")
    os.makedirs(os.path.dirname(os.path.abspath(args.figure)), exist_ok=True)
    figure.savefig(args.figure, dpi=90)
    plt.close(figure)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
