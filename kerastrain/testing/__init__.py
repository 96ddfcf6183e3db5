"""Testing helpers for kerastrain and for projects extending it.

`TestCase` is a small `unittest.TestCase` (pytest runs it) with the checks
every kerastrain object needs: config round-trip, `.keras` round-trip without
`custom_objects`, and float64-reference comparisons. `tensorboard_server` runs a
real TensorBoard on a log directory, and `Browser` a headless Chromium that
renders its dashboards.
"""

from kerastrain.testing._browser import Browser, find_chromium
from kerastrain.testing._tensorboard_server import get_json, tensorboard_server
from kerastrain.testing._test_case import TestCase, free_port, reload_model

__all__ = ["Browser", "TestCase", "find_chromium", "free_port", "get_json", "reload_model",
           "tensorboard_server"]
