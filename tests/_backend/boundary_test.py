"""One backend boundary (DESIGN.md, decision 1): only `kerastrain/_backend/`
imports tensorflow, jax or torch.

Parses every module of the package with `ast` (no import is executed) and
finds ``import x``, ``from x import ...``, ``importlib.import_module("x")``
and ``__import__("x")`` of a framework, at any depth (inside functions too).
"""

import ast
import pathlib

import pytest

import kerastrain

FRAMEWORKS = ("tensorflow", "jax", "jaxlib", "torch")
PACKAGE = pathlib.Path(kerastrain.__file__).parent
BACKEND = PACKAGE / "_backend"

# Files outside `_backend/` that still import a framework, each with the reason
# and who owns moving it. Every entry must still be needed (see
# `test_allowlist_is_not_stale`); the goal is an empty set.
ALLOWED = set()  # (nothing outside kerastrain/_backend/ may import a framework)


def _imported_modules(tree):
    """``(line, module name)`` of every import in ``tree``, dynamic ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = (function.attr if isinstance(function, ast.Attribute)
                      else getattr(function, "id", None))
            first = node.args[0]
            if (called in ("import_module", "__import__") and isinstance(first, ast.Constant)
                    and isinstance(first.value, str)):
                yield node.lineno, first.value


def _is_framework(module):
    return module.split(".")[0] in FRAMEWORKS


def framework_imports(root=PACKAGE):
    """``{relative path: ["line: module", ...]}`` for files outside `_backend/`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        if BACKEND in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        hits = [f"{line}: {module}" for line, module in _imported_modules(tree)
                if _is_framework(module)]
        if hits:
            found[path.relative_to(root).as_posix()] = hits
    return found


def test_only_backend_imports_a_framework():
    violations = {path: hits for path, hits in framework_imports().items()
                  if path not in ALLOWED}
    assert not violations, (
        "Only kerastrain/_backend/ may import tensorflow, jax or torch (DESIGN.md, "
        f"decision 1). Move these behind a kerastrain._backend function: {violations}"
    )


def test_allowlist_is_not_stale():
    stale = sorted(ALLOWED - set(framework_imports()))
    assert not stale, f"No longer importing a framework; remove from ALLOWED: {stale}"


@pytest.mark.parametrize("source, expected", [
    ("import tensorflow as tf", ["1: tensorflow"]),
    ("from tensorflow.python.ops import control_flow_util", ["1: tensorflow.python.ops"]),
    ("def f():\n    import jax.numpy as jnp", ["2: jax.numpy"]),
    ("import importlib\nimportlib.import_module('torch')", ["2: torch"]),
    ("__import__('jaxlib')", ["1: jaxlib"]),
    ("import keras\nfrom keras import ops\nimport tensorboard", []),
    ("from . import torch_like", []),
])
def test_detects_every_import_form(tmp_path, source, expected):
    (tmp_path / "module.py").write_text(source)
    assert framework_imports(tmp_path).get("module.py", []) == expected
