"""Reading the gradient statistics that optimizers record inside `apply()`.

Every kerastrain optimizer, and any Keras optimizer wrapped by
`kerastrain.optimizers.monitored`, exposes ``gradient_statistics()``
(``global_norm``, ``gradient_norms``, ``update_ratios``) and
``statistics_variable_paths``. A plain Keras optimizer is wrapped by
`ensure_statistics` when the callback is attached to the model by `fit`
(`set_model` runs before `fit` builds its train function, so the step is
compiled with the wrapper; the wrapped optimizer keeps its state).
"""

from __future__ import annotations

import keras
import numpy as np

_HOW_TO = (
    "Compile with a kerastrain optimizer, or wrap yours: "
    "model.compile(optimizer=kerastrain.optimizers.monitored(keras.optimizers.Adam()), ...)."
)


def has_statistics(optimizer):
    return callable(getattr(optimizer, "gradient_statistics", None)) and hasattr(
        optimizer, "statistics_variable_paths"
    )


def ensure_statistics(model, wrap):
    """Wrap ``model.optimizer`` with `monitored` if it records no statistics and ``wrap``.

    Returns True when the optimizer was replaced. The model's train function
    is reset so that `fit` compiles the step with the wrapper.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or has_statistics(optimizer) or not wrap:
        return False
    from kerastrain.optimizers import monitored

    model.optimizer = monitored(optimizer)
    if not model.optimizer.built and optimizer.built:
        model.optimizer.build(model.trainable_variables)
    # `model.save` writes the optimizer from the compile config: make it the wrapper,
    # so that the saved model reloads with the optimizer (and state) it trains with.
    compile_config = getattr(model, "_compile_config", None)
    if compile_config is not None and "optimizer" in getattr(compile_config, "config", {}):
        compile_config.config["optimizer"] = model.optimizer
    model.train_function = None
    return True


def check_statistics(model, callback_name, wrap):
    """Raise ValueError (before training) if ``model.optimizer`` records no statistics."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            f"{callback_name} needs a compiled model. Received: model.optimizer=None. "
            "Call model.compile(optimizer=..., loss=...) before fit()."
        )
    if has_statistics(optimizer):
        if getattr(optimizer, "record_statistics", True) is False:
            raise ValueError(
                f"Argument `optimizer` must record gradient statistics for {callback_name}. "
                f"Received: optimizer={optimizer.name!r} with record_statistics=False. "
                "Create it with record_statistics=True."
            )
        return
    reason = "wrap_optimizer=False" if not wrap else "it was not attached by fit()"
    raise ValueError(
        f"Argument `optimizer` must record gradient statistics for {callback_name} "
        f"({reason}). Received: optimizer={optimizer.name!r} of type "
        f"{type(optimizer).__name__}. {_HOW_TO}"
    )


def read_statistics(model):
    """``{"global_norm": float, "gradient_norms": array, "update_ratios": array,
    "paths": list}`` as numpy, read through ``model`` (syncs JAX state)."""
    optimizer = model.optimizer
    values = optimizer.gradient_statistics()
    return {
        "global_norm": float(keras.ops.convert_to_numpy(values["global_norm"])),
        "gradient_norms": np.asarray(keras.ops.convert_to_numpy(values["gradient_norms"])),
        "update_ratios": np.asarray(keras.ops.convert_to_numpy(values["update_ratios"])),
        "paths": list(optimizer.statistics_variable_paths),
    }
