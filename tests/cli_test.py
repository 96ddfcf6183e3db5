"""The `kerastrain` console script: help, version, info and user errors."""

import os
import re
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
    # every backend names its devices (Keras's torch backend has no list_devices)
    assert re.search(r"devices\W+[a-z]+:\d+", output), output


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


# --- start-up: the console script reads its arguments before importing Keras ---

CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "kerastrain")
HEAVY = ("keras", "tensorflow", "jax", "torch", "keras_tuner")


def run_console_script(*args, env=None, timeout=120, importtime=True):
    """The installed `kerastrain` script, by default under ``python -X importtime``."""
    assert os.path.isfile(CONSOLE_SCRIPT), f"no console script at {CONSOLE_SCRIPT}"
    options = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *options, CONSOLE_SCRIPT, *args], capture_output=True,
        text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


def imported_modules(stderr):
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def messages(stderr):
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


# Backend-independent: the test itself asserts that these subprocesses import no framework.
@pytest.mark.backend_independent
@pytest.mark.parametrize("args, status, expected", [
    (["--help"], 0, "usage: kerastrain"),
    (["--version"], 0, f"kerastrain {__version__}"),
    (["tune", "--help"], 0, "    max_trials = "),  # the config fields
    (["tune", "--set", "search.max_trials=abc"], 2,
     "kerastrain tune: error: Argument `search.max_trials` must be an integer."),
    (["tune", "no_such_config.toml"], 2, "kerastrain tune: error: "),
    (["tune", "--max-trials"], 2, "argument --max-trials: expected one argument"),
])
def test_help_version_and_argument_errors_import_no_framework(args, status, expected):
    result = run_console_script(*args, env={"KERASTRAIN_TRACEBACK": ""})
    modules = imported_modules(result.stderr)
    assert "kerastrain.cli" in modules  # importtime output was read
    assert not sorted(m for m in modules if m.split(".")[0] in HEAVY), args
    assert result.returncode == status, result.stderr[-2000:]
    assert expected in result.stdout + "\n".join(messages(result.stderr))
    if status == 2:  # one error line (argparse puts its usage lines before it)
        errors = [line for line in messages(result.stderr) if not line.startswith((" ", "usage"))]
        assert len(errors) == 1 and errors[0].startswith("kerastrain tune: error: "), errors


def test_library_import_still_registers_every_class():
    # `import kerastrain` (not the console script) imports the subpackages, so a saved
    # model loads without custom_objects after a bare `import kerastrain`.
    code = ("import sys, kerastrain, keras\n"
            "print(all(f'kerastrain.{n}' in sys.modules for n in kerastrain.__all__[1:]))\n"
            "print(keras.saving.get_registered_object('kerastrain>SGD') is not None)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]


@pytest.mark.backend_independent  # a subprocess loading only cli.py (the standard library)
def test_quiet_native_logs_discards_native_writes_only():
    # cli.py imports only the standard library, so it is loaded here from its file.
    code = (
        "import importlib.util, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('cli', {cli.__file__!r})\n"
        "cli = importlib.util.module_from_spec(spec); spec.loader.exec_module(cli)\n"
        "with cli.quiet_native_logs():\n"
        "    os.write(2, b'native line\\n')\n"
        "    print('python line', file=sys.stderr)\n"
        "os.write(2, b'native after\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "python line\nnative after\n"


@pytest.mark.slow
def test_a_command_is_quiet_unless_verbose():
    # TF_CPP_MIN_LOG_LEVEL=0: TensorFlow (start-up, oneDNN, CUDA lines) and JAX (PjRt
    # device lines) both log to stderr; the command must print none of it by default.
    import keras

    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    quiet = run_console_script("info", env=env, timeout=300, importtime=False)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    verbose = run_console_script("info", "--verbose", env=env, timeout=300, importtime=False)
    assert verbose.returncode == 0, verbose.stderr
    if keras.config.backend() != "torch":  # PyTorch writes no start-up lines to let through
        assert verbose.stderr.strip()
