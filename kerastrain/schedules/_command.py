"""`kerastrain schedule`: print (and plot) any schedule's values before training with it.

    kerastrain schedule SGDR --set initial_learning_rate=0.1 --set first_decay_steps=100 \\
        --steps 1000 --every 100 --output sgdr.png
"""

from __future__ import annotations

import ast


def _public_schedules():
    import keras

    from kerastrain import schedules

    return {
        name: getattr(schedules, name) for name in schedules.__all__
        if isinstance(getattr(schedules, name), type)
        and issubclass(getattr(schedules, name), keras.optimizers.schedules.LearningRateSchedule)
    }


def add_arguments(parser):
    parser.add_argument("schedule", help="class name in kerastrain.schedules, e.g. SGDR, OneCycle")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="a constructor argument: a Python literal (0.1, 100, [10, 20]) "
                             "or a bare word taken as a string (cos); repeat for each "
                             "argument. Schedules wrapping other schedules (Warmup, "
                             "Sequence, Scaled) take numbers here.")
    parser.add_argument("--steps", type=int, default=1000,
                        help="number of steps to evaluate (default %(default)s)")
    parser.add_argument("--every", type=int, default=None,
                        help="print every N-th step (default: 10 rows)")
    parser.add_argument("--output", default=None, help="also write a PNG plot to this path")


def parse_settings(settings):
    """``["a=1", "b='cos'"]`` -> ``{"a": 1, "b": "cos"}`` (values are Python literals)."""
    from kerastrain._validation import argument_error

    arguments = {}
    for setting in settings:
        name, separator, text = setting.partition("=")
        if not separator or not name.strip():
            raise argument_error("--set", "be NAME=VALUE", setting)
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()  # a bare word: a string such as cos or linear
        arguments[name.strip()] = value
    return arguments


def build(name, settings):
    """The schedule ``name`` constructed with the ``--set`` arguments."""
    from kerastrain._validation import check_one_of

    classes = _public_schedules()
    check_one_of("schedule", name, sorted(classes))
    arguments = parse_settings(settings)
    try:
        return classes[name](**arguments)
    except TypeError as error:
        if "unexpected keyword argument" in str(error) or "missing" in str(error):
            raise TypeError(f"{name}: {error}. See `help(kerastrain.schedules.{name})`.") from error
        raise


def run(args):
    from kerastrain._validation import check_integer
    from kerastrain.schedules._plot import plot, values

    steps = check_integer("--steps", args.steps, minimum=1)
    every = max(steps // 10, 1) if args.every is None else check_integer("--every", args.every,
                                                                          minimum=1)
    schedule = build(args.schedule, args.settings)
    rates = values(schedule, steps)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.schedule} over {steps} steps")
    table.add_column("step", justify="right")
    table.add_column("value", justify="right")
    shown = sorted(set(range(0, steps, every)) | {steps - 1})
    for step in shown:
        table.add_row(str(step), f"{rates[step]:.6g}")
    Console().print(table)
    if args.output:
        figure = plot(schedule, steps, title=args.schedule)
        figure.savefig(args.output, dpi=90)
        print(f"wrote {args.output}")
    return 0
