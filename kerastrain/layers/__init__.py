"""kerastrain.layers."""

__all__ = []
