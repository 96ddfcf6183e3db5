"""TensorBoard's dashboards, as a user sees them: a real `tensorboard` on our logs, a real
headless Chromium rendering its pages, and the rendered text checked for our runs and tags.

The screenshots are for people (set KERASTRAIN_SCREENSHOTS=<directory> to keep them);
the assertions are on the page text after TensorBoard's JavaScript has drawn it.
"""

import os
import time

import keras
import numpy as np
import pytest

import kerastrain
from kerastrain.tensorboard import SummaryWriter
from kerastrain.testing import Browser, find_chromium, get_json, tensorboard_server

RUN = "digits_mlp"


def write_logs(root):
    """A short digits fit with `monitor(...)`, plus an image and hparams by `SummaryWriter`."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x, y = (images[:240] / 16.0).astype("float32"), labels[:240].astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)),
                              keras.layers.Dense(16, activation="relu", name="hidden"),
                              keras.layers.Dense(10, activation="softmax", name="output")],
                             name="mlp")
    model.compile(optimizer=kerastrain.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    log_dir = os.path.join(root, RUN)
    model.fit(x, y, validation_split=0.25, epochs=3, batch_size=32, verbose=0,
              callbacks=kerastrain.callbacks.monitor(log_dir, (x[:64], y[:64])))
    # The run directory itself (not train/ or validation/, which monitor's writer used).
    grid = np.concatenate([np.concatenate(list(images[row * 8:row * 8 + 8].reshape(8, 8, 8)),
                                          axis=1) for row in range(4)]) / 16.0
    with SummaryWriter(log_dir) as writer:
        writer.image("inputs/digits", np.kron(grid, np.ones((4, 4))), step=0, run=None)
        writer.hparams({"learning_rate": 0.1, "units": 16, "optimizer": "sgd"},
                       metrics=["epoch_loss", "epoch_accuracy"], trial_id=RUN)


# page (a TensorBoard URL fragment) -> strings its rendered text must contain
PAGES = {
    "scalars&tagFilter=epoch_": [f"{RUN}/train", f"{RUN}/validation", "tag: epoch_loss",
                                 "tag: epoch_accuracy"],
    "histograms&tagFilter=activations|weights": [
        f"{RUN}/train", "tag: activations/mlp/hidden", "tag: weights/mlp/hidden/kernel",
        "tag: weights/mlp/output/bias"],
    "images": [RUN, "inputs/digits"],
    "hparams": ["learning_rate", "units", "optimizer", "sgd", "epoch_loss"],
}


@pytest.mark.slow
def test_dashboards_show_our_runs_and_tags(tmp_path):
    find_chromium()  # fails first, saying how to install it, rather than after training
    write_logs(tmp_path / "logs")
    shots = os.environ.get("KERASTRAIN_SCREENSHOTS") or str(tmp_path)
    os.makedirs(shots, exist_ok=True)
    with tensorboard_server(tmp_path / "logs") as url, Browser(width=1000, height=640) as browser:
        runs = {RUN, f"{RUN}/train", f"{RUN}/validation"}
        get_json(f"{url}/data/runs", until=lambda body: runs <= set(body))  # logs loaded
        for page, expected in PAGES.items():
            browser.open(f"{url}/#{page}")
            browser.wait_for_text(expected, timeout=60)
            path = browser.screenshot(os.path.join(shots, f"{page.split('&')[0]}.png"))
            with open(path, "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


SHADOW_PAGE = """data:text/html,<p>light text</p><x-card></x-card><script>
customElements.define('x-card', class extends HTMLElement { constructor() { super();
  this.attachShadow({mode: 'open'}).innerHTML = '<b>tag: epoch_loss</b><style>.x{}</style>'; } });
</script>"""


@pytest.mark.slow
@pytest.mark.backend_independent  # Chromium and a data: URL only; no Keras
def test_browser_reads_shadow_dom_and_ends_its_processes(tmp_path):
    with Browser(width=320, height=200, timeout=30) as browser:
        browser.open(SHADOW_PAGE.replace("\n", " "))
        text = browser.wait_for_text(["light text", "tag: epoch_loss"], timeout=10)
        assert ".x{}" not in text  # <style> and <script> are not page text
        assert "customElements" not in text
        with pytest.raises(AssertionError, match=r"the page does not show \['nosuch'\] after "
                           r"waiting; it shows: ' ?light text"):
            browser.wait_for_text(["nosuch"], timeout=1)
        with open(browser.screenshot(tmp_path / "shot.png"), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
        group = browser._pid
    deadline = time.monotonic() + 10  # the browser and its helpers are gone (once reaped)
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"processes of Chromium's group {group} still run")


@pytest.mark.backend_independent  # a PATH lookup; no Keras
def test_missing_chromium_fails_saying_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no browser on PATH
    monkeypatch.delenv("KERASTRAIN_CHROMIUM", raising=False)
    with pytest.raises(RuntimeError, match=r"No Chromium browser found on PATH \(looked for "
                       r"chromium, .*\)\. Install it with `apt-get install -y chromium`"):
        find_chromium()
    monkeypatch.setenv("KERASTRAIN_CHROMIUM", str(tmp_path / "nosuch"))
    with pytest.raises(RuntimeError, match=r"KERASTRAIN_CHROMIUM='.*nosuch' is not an "
                       r"executable\. Install it with"):
        find_chromium()
