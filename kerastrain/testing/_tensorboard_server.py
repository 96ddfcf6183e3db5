"""A real `tensorboard` server for tests: 127.0.0.1, a free port, killed by PID."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request

from kerastrain.testing._test_case import free_port

# `tensorboard` without importing TensorFlow (its own `notf` marker; seconds faster),
# and without the separate Rust data server, so that killing one PID stops it all.
_SERVER = (
    "import sys, types\n"
    "sys.modules['tensorboard.compat.notf'] = types.ModuleType('tensorboard.compat.notf')\n"
    "from tensorboard.main import run_main\n"
    "sys.argv[0] = 'tensorboard'\n"
    "run_main()\n"
)


@contextlib.contextmanager
def tensorboard_server(log_dir):
    """Run ``tensorboard --logdir log_dir`` on 127.0.0.1; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, "--logdir", str(log_dir), "--host", "127.0.0.1",
         "--port", str(port), "--reload_interval", "1", "--load_fast", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=30)


def get_json(url, until=lambda body: True, timeout=60.0):
    """GET ``url`` until it answers and ``until(body)`` holds, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = json.loads(response.read())
            if until(last):
                return last
        except OSError as error:
            last = error
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer as expected in {timeout} s (last: {last})")
