"""kerastrain.regularizers."""

__all__ = []
