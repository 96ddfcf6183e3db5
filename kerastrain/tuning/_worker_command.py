"""`kerastrain worker --chief HOST:PORT [CONFIG]`: run trials for a remote chief."""

from kerastrain.tuning._command import add_worker_arguments as add_arguments
from kerastrain.tuning._command import run_worker as run

__all__ = ["add_arguments", "run"]
