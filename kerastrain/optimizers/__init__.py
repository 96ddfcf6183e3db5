"""kerastrain.optimizers: the unified update formula as composable transforms."""

from kerastrain.optimizers import transforms
from kerastrain.optimizers._chain import Chain
from kerastrain.optimizers._lookahead import Lookahead
from kerastrain.optimizers._modern_presets import LARS, AdaBelief, RAdam
from kerastrain.optimizers._monitored import Monitored, monitored
from kerastrain.optimizers._newton import HessianFree
from kerastrain.optimizers._presets import SGD, Adadelta, Adagrad, Adam, AdamW, Nadam, RMSprop
from kerastrain.optimizers._sam import SAM, prepare

__all__ = [
    "LARS",
    "SAM",
    "SGD",
    "AdaBelief",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Chain",
    "HessianFree",
    "Lookahead",
    "Monitored",
    "Nadam",
    "RAdam",
    "RMSprop",
    "monitored",
    "prepare",
    "transforms",
]
