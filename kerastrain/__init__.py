"""kerastrain: the network-optimization-and-regularization chapter as a Keras 3 toolkit."""

__version__ = "0.1.0"

from kerastrain import (  # noqa: E402
    callbacks,
    diagnostics,
    initializers,
    layers,
    optimizers,
    regularizers,
    schedules,
    tensorboard,
    tuning,
)

__all__ = [
    "__version__",
    "callbacks",
    "diagnostics",
    "initializers",
    "layers",
    "optimizers",
    "regularizers",
    "schedules",
    "tensorboard",
    "tuning",
]
