"""kerastrain.layers: preprocessing (4.4), normalization (4.5), Maxout and MC dropout (4.7).

Variational (locked) dropout for recurrent layers is Keras's own: use
``recurrent_dropout=`` of `keras.layers.LSTM` / `GRU` / `SimpleRNN` for the
hidden state, and `keras.layers.SpatialDropout1D` (one mask per sequence,
shared by all time steps) for a sequence's inputs or outputs.
"""

from kerastrain.layers._activation import LocalResponseNormalization, Maxout
from kerastrain.layers._dropout import MCDropout, mc_predict
from kerastrain.layers._scaling import DecimalScaling, MeanSubtraction, MinMaxScaling
from kerastrain.layers._weight_norm import WeightNormalization
from kerastrain.layers._whitening import PCA, ZCAWhitening

__all__ = [
    "PCA",
    "DecimalScaling",
    "LocalResponseNormalization",
    "MCDropout",
    "Maxout",
    "MeanSubtraction",
    "MinMaxScaling",
    "WeightNormalization",
    "ZCAWhitening",
    "mc_predict",
]
