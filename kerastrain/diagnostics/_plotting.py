"""Plotting for the diagnostics' ``.plot()``: matplotlib on demand, no pyplot state."""

from __future__ import annotations


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg canvas, with an install hint."""
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise ImportError(
            "Plotting diagnostics needs matplotlib: `pip install matplotlib`."
        ) from error
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(**kwargs):
    """A `matplotlib.figure.Figure` not registered with pyplot (no global state)."""
    pyplot()
    from matplotlib.figure import Figure

    return Figure(**kwargs)
