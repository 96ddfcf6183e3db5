"""Registration of initializers under a name that no other kerastrain class takes."""

from __future__ import annotations

import keras


def register(cls):
    """Register ``cls`` as ``kerastrain>initializers.<Name>``.

    Initializers mirror Keras's generic names (``Constant``, ``Zeros``...), which
    other kerastrain subpackages also use (``kerastrain.schedules.Constant``);
    the ``initializers.`` prefix keeps `.keras` files unambiguous.
    """
    return keras.saving.register_keras_serializable(
        package="kerastrain", name=f"initializers.{cls.__name__}")(cls)
