"""`kerastrain results DIR`: the results table of a search, best first."""

from kerastrain.tuning._command import add_results_arguments as add_arguments
from kerastrain.tuning._command import run_results as run

__all__ = ["add_arguments", "run"]
