"""kerastrain.initializers: the chapter's initializations (section 4.3) and LSUV."""

from kerastrain.initializers._constant import (
    Constant,
    ReLUBias,
    SymmetricInitializationWarning,
    Zeros,
)
from kerastrain.initializers._lsuv import lsuv
from kerastrain.initializers._random import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LeCunNormal,
    LeCunUniform,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    XavierNormal,
    XavierUniform,
    compute_fans,
)

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "LeCunNormal",
    "LeCunUniform",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "ReLUBias",
    "SymmetricInitializationWarning",
    "XavierNormal",
    "XavierUniform",
    "Zeros",
    "compute_fans",
    "lsuv",
]
