"""kerastrain.optimizers."""

from kerastrain.optimizers._statistics import Monitored, monitored

__all__ = ["Monitored", "monitored"]
