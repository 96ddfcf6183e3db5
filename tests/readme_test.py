"""The README's Quickstart has exactly two commands, and CI runs the test command verbatim."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [block.strip() for block in blocks]


def test_quickstart_has_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in command for command in commands)
    assert "kerastrain" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = quickstart_commands()[1]
    assert test_command in ci
    assert f"KERAS_BACKEND=jax bash -c '{test_command}'" in ci


def test_tox_has_the_backend_environments():
    tox = (ROOT / "tox.ini").read_text()
    for environment in ("py-tensorflow", "py-jax", "py-torch", "lint"):
        assert environment in tox
