"""examples/schedules_gallery.py runs in --quick mode, prints the curves' values, writes a PNG."""

import os
import runpy
import sys

import numpy as np

from kerastrain.schedules import SGDR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_run_prints_values_and_writes_the_figure(tmp_path, monkeypatch, capsys):
    figure = tmp_path / "schedules.png"
    script = os.path.join(ROOT, "examples", "schedules_gallery.py")
    # In-process (as `python examples/schedules_gallery.py --quick` would run it),
    # to spare a second Keras import.
    monkeypatch.setattr(sys, "argv", [script, "--quick", "--figure", str(figure)])
    runpy.run_path(script, run_name="__main__")
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("t_mul=2 "))
    # The gallery's "t_mul=2" curve over 200 steps: SGDR(0.1, 200 // 15, t_mul=2).
    expected = SGDR(0.1, 200 // 15, t_mul=2.0)(np.array([0, 50, 100, 199]))
    np.testing.assert_allclose([float(value) for value in row.split()[1:]], expected,
                               rtol=1e-4, atol=1e-9)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 1000 < figure.stat().st_size < 300 * 1024


def test_committed_figure_is_a_small_png():
    path = os.path.join(ROOT, "examples", "figures", "schedules.png")
    with open(path, "rb") as stream:
        assert stream.read(8) == b"\x89PNG\r\n\x1a\n"
    assert 1000 < os.path.getsize(path) < 300 * 1024
