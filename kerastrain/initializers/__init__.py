"""kerastrain.initializers."""

__all__ = []
