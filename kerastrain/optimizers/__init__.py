"""kerastrain.optimizers."""

__all__ = []
