"""`print_msg`: how every kerastrain callback prints when ``verbose > 0``.

Keras's own callbacks print through ``keras.src.utils.io_utils.print_msg``,
which is not public API (``keras.utils.io_utils`` is gone in Keras 3.15).
This is the same behaviour with public names: to stdout while Keras's
interactive logging is on (the default), else to the ``"kerastrain"`` logger
at INFO level (where Keras logs to absl).
"""

from __future__ import annotations

import logging
import sys

import keras

__all__ = ["print_msg"]

_LOGGER = logging.getLogger("kerastrain")


def print_msg(message):
    """Print ``message`` as Keras's callbacks do (stdout, or logging when not interactive)."""
    message = str(message)
    if keras.config.is_interactive_logging_enabled():
        sys.stdout.write(f"{message}\n")
        sys.stdout.flush()
    else:
        _LOGGER.info(message)
