"""kerastrain.tuning."""

__all__ = []
