"""`kerastrain lr-find`: the learning-rate range test from the command line.

Model and data options as in `kerastrain diagnose` (a built-in digits MLP
when none are given); the plot is written with ``--output``.
"""

from __future__ import annotations

from kerastrain.diagnostics import _command


def add_arguments(parser):
    """Options of `kerastrain lr-find`."""
    _command.add_common_arguments(parser)
    parser.add_argument("--start-lr", type=float, default=1e-7, help="default 1e-7")
    parser.add_argument("--end-lr", type=float, default=10.0, help="default 10")
    parser.add_argument("--num-steps", type=int, default=100, help="batches (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument("--output", metavar="PNG",
                        help="write the plot to this image file (checked before the test runs)")


def run(args):
    """Run the range test, print the suggestions, write the plot."""
    from kerastrain.diagnostics import lr_range_test

    if args.output:
        _command.check_output_file(args.output)
    model, x, y = _command.prepare(args)
    result = lr_range_test(model, x, y, start_lr=args.start_lr, end_lr=args.end_lr,
                           num_steps=args.num_steps, batch_size=args.batch_size,
                           seed=args.seed)
    print(result)
    if result.suggestion is not None:
        print(f"suggested learning rate (valley): {result.suggestion:.3g}")
    if args.output:
        result.plot().savefig(args.output, dpi=100)
        print(f"wrote {args.output}")
    return 0
