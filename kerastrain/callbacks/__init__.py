"""kerastrain.callbacks."""

__all__ = []
