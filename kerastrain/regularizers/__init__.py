"""kerastrain.regularizers: penalties of section 4.7.

`L1`, `L2` and `L1L2` are Keras's own (re-exported, not copied): use them as
``kernel_regularizer`` for weight penalties and as ``activity_regularizer`` for
the chapter's "L1 on the autoencoder's middle layer" (Keras divides an activity
penalty by the batch size, so its strength does not depend on the batch size).
Decoupled weight decay lives in `kerastrain.optimizers`; max-norm is Keras's
`keras.constraints.MaxNorm`. Added here: label smoothing for sparse labels.
"""

from keras.regularizers import L1, L1L2, L2

from kerastrain.regularizers._label_smoothing import (
    SparseCategoricalCrossentropy,
    sparse_categorical_crossentropy,
)

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "SparseCategoricalCrossentropy",
    "sparse_categorical_crossentropy",
]
