"""`kerastrain info`: version, Keras backend and devices."""

from __future__ import annotations


def add_arguments(parser):
    """No options."""
    del parser


def collect():
    """A ``{field: value}`` dict describing this installation."""
    import platform

    import keras

    from kerastrain import __version__
    from kerastrain._backend._devices import list_devices

    try:
        devices = list_devices()
    except Exception as error:  # the device query is informational only
        devices = [f"unavailable ({error})"]
    return {
        "kerastrain": __version__,
        "keras": keras.__version__,
        "backend": keras.config.backend(),
        "floatx": keras.config.floatx(),
        "python": platform.python_version(),
        "devices": ", ".join(str(device) for device in devices),
    }


def run(args):
    """Print the installation as a table."""
    del args
    from rich.console import Console
    from rich.table import Table

    table = Table(title="kerastrain info", show_header=False)
    for key, value in collect().items():
        table.add_row(key, str(value))
    Console().print(table)
    return 0
