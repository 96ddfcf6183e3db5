"""kerastrain: the network-optimization-and-regularization chapter as a Keras 3 toolkit."""

__version__ = "0.1.0"

import importlib as _importlib  # noqa: E402
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

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


def _is_console_script():
    """True in the `kerastrain` console script, which imports a subpackage only when a
    command needs it (so `--help`, `--version` and argument errors never load Keras)."""
    main_file = getattr(_sys.modules.get("__main__"), "__file__", None) or ""
    return _os.path.basename(main_file).split(".")[0] in ("kerastrain", "kerastrain-script")


def __getattr__(name):
    if name not in __all__:
        raise AttributeError(f"module 'kerastrain' has no attribute {name!r}")
    return _importlib.import_module(f"kerastrain.{name}")


if not _is_console_script():  # importing registers every class for `.keras` loading
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
