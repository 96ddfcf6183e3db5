"""Smoke tests of the chapter examples: each runs in --quick mode and writes its figure.

The examples are scripts, not modules: they run here as subprocesses, the way a
user runs them, on the backend of the test session (``KERAS_BACKEND``).
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
FIGURES = os.path.join(EXAMPLES, "figures")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_FIGURE_BYTES = 300 * 1024

# example -> extra arguments (temporary directories are filled in per test) and
# a line its quick run must print (the experiment's point, not only "it ran").
CASES = {
    "init_scale": ([], "tanh  LSUV"),
    "optimizer_paths": ([], "ravine f = x²/20 + y²    Adam"),
    "batch_size": ([], "largest Hessian eigenvalue"),
    "learning_rate": (["--log-dir", "{tmp}/logs"], "learning-rate range test: "),
    "normalization": ([], "with batch norm"),
    "regularization": ([], "MC dropout std"),
    "monitoring": (["--log-dir", "{tmp}/logs"], "warning: DeadReLUDetector: 16 of 16 units"),
    "critical_points": ([], "Hessian spectral density (SLQ"),
    "tuning_config": (["--directory", "{tmp}/tune"], "digits_cv: 1 trials"),
}


def _scripts():
    return sorted(name[:-3] for name in os.listdir(EXAMPLES)
                  if name.endswith(".py") and not name.startswith("_"))


def _check_png(path):
    with open(path, "rb") as stream:
        header = stream.read(8)
    assert header == PNG_MAGIC, f"{path} is not a PNG"
    size = os.path.getsize(path)
    assert 1000 < size < MAX_FIGURE_BYTES, f"{path}: {size} bytes"


def test_every_example_has_a_smoke_test():
    # schedules_gallery.py belongs to (and is tested with) kerastrain.schedules
    assert sorted(set(_scripts()) - {"schedules_gallery"}) == sorted(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_quick_run_writes_its_figure(name, tmp_path):
    extra, expected = CASES[name]
    figure = tmp_path / f"{name}.png"
    command = [sys.executable, os.path.join(EXAMPLES, f"{name}.py"), "--quick",
               "--figure", str(figure)] + [arg.format(tmp=tmp_path) for arg in extra]
    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=420, env=env,
                            cwd=str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert f"wrote {figure}" in result.stdout
    assert expected in output, output[-4000:]
    _check_png(figure)
    if "--log-dir" in extra:  # TensorBoard event files, one directory per run
        logs = tmp_path / "logs"
        events = [d for d, _, files in os.walk(logs)
                  if any(f.startswith("events.out.tfevents") for f in files)]
        assert events, f"no TensorBoard event file under {logs}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_committed_figure_is_a_small_png(name):
    _check_png(os.path.join(FIGURES, f"{name}.png"))


def _parse(monkeypatch, name, *argv):
    monkeypatch.syspath_prepend(EXAMPLES)
    import _common

    monkeypatch.setattr(sys, "argv", [f"examples/{name}.py", *argv])
    return _common.parse_args(name, "test")


def test_quick_run_does_not_overwrite_the_committed_figure(monkeypatch):
    quick = _parse(monkeypatch, "init_scale", "--quick")
    assert os.path.basename(quick.figure) == "init_scale.png"
    assert not os.path.abspath(quick.figure).startswith(os.path.abspath(FIGURES))
    assert os.path.isdir(os.path.dirname(quick.figure))  # a new temporary directory
    full = _parse(monkeypatch, "init_scale")
    assert full.figure == os.path.join(FIGURES, "init_scale.png")
    chosen = _parse(monkeypatch, "init_scale", "--quick", "--figure", "mine.png")
    assert chosen.figure == "mine.png"


def test_help_shows_the_real_default_figure(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _parse(monkeypatch, "monitoring", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: examples/figures/monitoring.png; with --quick a new temporary" in text
