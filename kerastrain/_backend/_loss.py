"""The loss of a Keras model as a pure function of its trainable values.

Written in Keras only (no backend import): every backend module differentiates
the function built here.
"""

from __future__ import annotations

import keras

from kerastrain import _validation


def trainable_values(model):
    """The current values of `model.trainable_variables`, as backend tensors."""
    return [variable.value for variable in model.trainable_variables]


def check_model(model, loss):
    """Raise a clear error when the model cannot give a loss."""
    if not isinstance(model, keras.Model):
        raise _validation.type_error("model", "a keras.Model", model)
    if not model.built:
        raise _validation.argument_error(
            "model", "be built", model,
            "Call the model once on a batch (or `model.build(input_shape)`) first.",
        )
    if loss is None and not getattr(model, "compiled", False):
        raise _validation.argument_error(
            "loss", "be given when the model is not compiled", loss,
            "Compile the model with a loss, or pass `loss=` (a keras loss or its name).",
        )
    if not model.trainable_variables:
        raise _validation.argument_error(
            "model", "have trainable variables", model,
        )


def make_loss_fn(model, loss=None, training=False):
    """Return ``f(values, x, y, sample_weight=None, non_trainable=None) -> loss``.

    ``values`` replace ``model.trainable_variables`` (same order);
    ``non_trainable`` (default: the variables' current values) replaces
    ``model.non_trainable_variables``. The model's
    regularization losses are included. With ``loss=None`` the compiled loss is
    used (through `model.stateless_compute_loss`); otherwise ``loss`` is a
    `keras.losses` object, name or callable ``loss(y_true, y_pred)``.
    Non-trainable state (batch-norm statistics) is read, never written.
    """
    check_model(model, loss)
    loss_object = None if loss is None else keras.losses.get(loss)

    def loss_fn(values, x, y, sample_weight=None, non_trainable=None):
        if non_trainable is None:
            non_trainable = [v.value for v in model.non_trainable_variables]
        kwargs = {"training": training} if model._call_has_training_arg else {}
        y_pred, _, losses = model.stateless_call(
            values, non_trainable, x, return_losses=True, **kwargs
        )
        if loss_object is not None:
            total = loss_object(y, y_pred, sample_weight=sample_weight)
            for extra in losses:
                total = total + keras.ops.cast(extra, total.dtype)
            return total
        # The compiled loss, exactly as Keras's own JAX trainer computes it:
        # forward-pass losses are handed to `compute_loss` via the override.
        if losses:
            model._losses_override.clear()
            model._losses_override = losses
        try:
            metrics = [v.value for v in model.metrics_variables]
            total, _ = model.stateless_compute_loss(
                values, non_trainable, metrics, x=x, y=y, y_pred=y_pred,
                sample_weight=sample_weight, training=training,
            )
        finally:
            if losses:
                model._losses_override.clear()
        return total

    return loss_fn
