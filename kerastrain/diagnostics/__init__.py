"""kerastrain.diagnostics."""

__all__ = []
