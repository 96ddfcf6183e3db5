"""kerastrain.optimizers: the unified update formula as composable transforms."""

from kerastrain.optimizers import transforms
from kerastrain.optimizers._chain import Chain
from kerastrain.optimizers._presets import SGD, Adadelta, Adagrad, Adam, AdamW, Nadam, RMSprop
from kerastrain.optimizers._statistics import Monitored, monitored

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Chain",
    "Monitored",
    "Nadam",
    "RMSprop",
    "monitored",
    "transforms",
]
