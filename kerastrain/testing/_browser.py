"""A headless Chromium for tests: the page text (shadow DOM included) and screenshots.

Chromium is driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: commands on its file descriptor 3, answers on 4,
JSON messages separated by NUL bytes), so no WebSocket library, Selenium or
Playwright is needed, and no debugging port is opened. The browser gets a
fresh profile directory, no network beyond the pages it is sent to, and is
killed by PID on exit.

Example:

    with tensorboard_server(log_dir) as url, Browser() as browser:
        browser.open(f"{url}/#scalars")
        browser.wait_for_text(["epoch_loss", "validation"])
        browser.screenshot("scalars.png")
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_INSTALL = ("Install it with `apt-get install -y chromium` (Debian/Ubuntu), or set "
            "KERASTRAIN_CHROMIUM to the path of a Chromium or Chrome executable.")
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)

# All text of the page, descending into shadow roots (TensorBoard's Polymer dashboards
# keep theirs there, where `--dump-dom` does not look), without <style>, <script> and <noscript>.
_PAGE_TEXT = """(() => {
  const parts = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) parts.push(child.textContent);
      else if (!['STYLE', 'SCRIPT', 'TEMPLATE', 'NOSCRIPT'].includes(child.nodeName)) walk(child);
    }
  };
  walk(document);
  return parts.join(' ').replace(/\\s+/g, ' ');
})()"""


def find_chromium():
    """The Chromium executable (``KERASTRAIN_CHROMIUM`` or on ``PATH``); fails saying how to install it."""
    explicit = os.environ.get("KERASTRAIN_CHROMIUM")
    if explicit:
        if shutil.which(explicit):
            return shutil.which(explicit)
        raise RuntimeError(f"KERASTRAIN_CHROMIUM={explicit!r} is not an executable. {_INSTALL}")
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(f"No Chromium browser found on PATH (looked for {', '.join(_NAMES)}). "
                       f"{_INSTALL}")


class Browser:
    """One headless Chromium tab, driven over the DevTools pipe.

    Args:
        width, height: the viewport, in CSS pixels (default 1280 x 800).
        timeout: seconds allowed for each command (default 60).
    """

    def __init__(self, width=1280, height=800, timeout=60.0):
        self.width, self.height, self.timeout = width, height, timeout
        self._pid = self._exit_code = self._profile = self._send_fd = self._receive_fd = None
        self._next_id = 0
        self._buffer = b""

    def __enter__(self):
        executable = find_chromium()
        self._profile = tempfile.TemporaryDirectory(prefix="kerastrain-chromium-",
                                                    ignore_cleanup_errors=True)
        try:
            self._spawn(executable)
            target = self._call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self._call("Target.attachToTarget", targetId=target,
                                       flatten=True)["sessionId"]
            self._call("Emulation.setDeviceMetricsOverride", session=True, width=self.width,
                       height=self.height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _spawn(self, executable):
        # Chromium reads commands from fd 3 and writes answers to fd 4: the pipe ends are
        # duplicated there in the child (from fds above 9, so neither overwrites the other).
        to_browser, self._send_fd = _high_pipe()
        self._receive_fd, from_browser = _high_pipe()
        command = [executable, *_FLAGS, f"--user-data-dir={self._profile.name}",
                   f"--window-size={self.width},{self.height}",
                   "--remote-debugging-pipe", "about:blank"]
        try:
            # In its own session, so that killing its process group (by its PID) ends
            # the renderer and helper processes too.
            self._pid = os.posix_spawn(executable, command, os.environ, setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, to_browser, 3),
                (os.POSIX_SPAWN_DUP2, from_browser, 4),
            ])
        finally:
            os.close(to_browser)
            os.close(from_browser)

    def __exit__(self, *exc_info):
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = self._exit_code = None
        for fd in (self._send_fd, self._receive_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._send_fd = self._receive_fd = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    # -- pages --------------------------------------------------------------
    def open(self, url):
        """Load ``url`` afresh (returns once the navigation is committed).

        The tab goes through ``about:blank`` first, so that a URL differing from the
        current one only after ``#`` still loads a new page.
        """
        self._call("Page.navigate", session=True, url="about:blank")
        answer = self._call("Page.navigate", session=True, url=url)
        if answer.get("errorText"):
            raise AssertionError(f"Chromium could not open {url}: {answer['errorText']}")

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page."""
        answer = self._call("Runtime.evaluate", session=True, expression=expression,
                            returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"JavaScript failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def text(self):
        """The page's visible text, shadow DOM included, whitespace collapsed."""
        return self.evaluate(_PAGE_TEXT) or ""

    def wait_for_text(self, expected, timeout=None):
        """Poll the page text until it contains every string of ``expected``; returns it."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            text = self.text()
            missing = [item for item in expected if item not in text]
            if not missing:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the page does not show {missing} after waiting; "
                                     f"it shows: {text[:2000]!r}")
            time.sleep(0.5)

    def screenshot(self, path):
        """Save the viewport as a PNG file at ``path``."""
        answer = self._call("Page.captureScreenshot", session=True, format="png")
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(answer["data"]))
        return path

    # -- the DevTools pipe ----------------------------------------------------
    def _call(self, method, session=False, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError(f"Chromium: {method} failed: {answer['error']}")
                return answer.get("result", {})

    def _receive(self, deadline, method):
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if self._exited():
                raise AssertionError(f"Chromium exited (status {self._exit_code}) "
                                     f"while waiting for {method}")
            ready, _, _ = select.select([self._receive_fd], [], [], max(0.0, min(remaining, 1.0)))
            if not ready and remaining <= 0:
                raise AssertionError(f"Chromium did not answer {method} in {self.timeout} s")
            if ready:
                chunk = os.read(self._receive_fd, 1 << 20)
                if not chunk:
                    raise AssertionError(f"Chromium closed its pipe while waiting for {method}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)


    def _exited(self):
        if self._exit_code is None:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                self._exit_code = os.waitstatus_to_exitcode(status)
        return self._exit_code is not None


def _high_pipe():
    """A pipe whose two ends are file descriptors above 9 (read end, write end)."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return tuple(ends)
