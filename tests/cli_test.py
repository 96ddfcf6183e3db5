"""The `kerastrain` console script: help, version, info and user errors."""

import os
import subprocess
import sys

import pytest

from kerastrain import __version__, cli


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "kerastrain.cli", *args], capture_output=True, text=True,
        timeout=300, env=dict(os.environ, **(env or {})),
    )


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in output


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "usage: kerastrain" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kerastrain {__version__}"


def test_info_names_the_backend(capsys):
    import keras

    assert cli.main(["info"]) == 0
    output = capsys.readouterr().out
    assert __version__ in output
    assert keras.config.backend() in output
    assert "devices" in output


def test_console_script_exit_status_for_an_unknown_command():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice: 'no-such-command'" in result.stderr


def test_user_error_is_one_line_without_traceback(monkeypatch, capsys):
    import kerastrain._info

    def broken(args):
        raise ValueError("Argument `x` must be > 0. Received: x=-1")

    monkeypatch.setattr(kerastrain._info, "run", broken)
    assert cli.main(["info"]) == 2
    error = capsys.readouterr().err
    assert error == "kerastrain info: error: Argument `x` must be > 0. Received: x=-1\n"


def test_traceback_on_request(monkeypatch):
    import kerastrain._info

    def broken(args):
        raise ValueError("boom")

    monkeypatch.setattr(kerastrain._info, "run", broken)
    monkeypatch.setenv("KERASTRAIN_TRACEBACK", "1")
    with pytest.raises(ValueError, match="boom"):
        cli.main(["info"])


def test_every_command_module_has_the_interface():
    import importlib

    for name, (module_name, help_text) in cli.COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments), name
        assert callable(module.run), name
        assert help_text, name
