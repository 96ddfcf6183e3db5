"""kerastrain.schedules."""

__all__ = []
