"""Label smoothing for sparse integer labels, as a loss."""

from __future__ import annotations

import keras
from keras import ops

from kerastrain._validation import check_in_range, check_integer, check_type


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                                    axis=-1):
    """Per-sample cross-entropy of integer labels against smoothed one-hot targets.

    ``t = (1 − ε)·onehot(y) + ε/K``, ``loss = −Σ_k t_k log p_k`` with K classes
    (the size of ``y_pred`` along ``axis``). Equal to Keras's
    `categorical_crossentropy(onehot(y), y_pred, label_smoothing=ε)` and to
    PyTorch's `cross_entropy(logits, y, label_smoothing=ε)`.
    """
    num_classes = y_pred.shape[axis]
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    one_hot = ops.one_hot(ops.cast(y_true, "int32"), num_classes, axis=axis, dtype=y_pred.dtype)
    return keras.losses.categorical_crossentropy(
        one_hot, y_pred, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


@keras.saving.register_keras_serializable(package="kerastrain")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """`SparseCategoricalCrossentropy` with ``label_smoothing`` (Keras's has none).

    Targets ``t = (1 − ε)·onehot(y) + ε/K`` for integer labels ``y`` and K
    classes; ``loss = −Σ_k t_k log p_k``. With ``label_smoothing=0`` it is
    Keras's `SparseCategoricalCrossentropy`.

    Args:
        from_logits: whether ``y_pred`` are logits (default False).
        label_smoothing: ε in [0, 1] (default 0.0).
        axis: the class axis (default -1).
        reduction, name, dtype: as for `keras.losses.Loss`.

    Example:
        >>> model.compile(optimizer="adam",
        ...               loss=SparseCategoricalCrossentropy(from_logits=True,
        ...                                                  label_smoothing=0.1))

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer
        Vision", CVPR 2016 (section 7, label-smoothing regularization).
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="sparse_categorical_crossentropy",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = check_type("from_logits", from_logits, bool, "a bool")
        self.label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
        self.axis = check_integer("axis", axis)

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=self.from_logits,
            label_smoothing=self.label_smoothing, axis=self.axis)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing,
                      axis=self.axis)
        return config
