"""The TensorBoard writer: read back by tensorboard's EventAccumulator and by a real server."""

import os
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.util import tensor_util

from kerastrain.tensorboard import SummaryWriter, check_log_dir
from kerastrain.testing import TestCase, get_json, tensorboard_server


def read_run(directory):
    accumulator = EventAccumulator(directory, size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def plugin_of(accumulator, tag):
    return accumulator.SummaryMetadata(tag).plugin_data.plugin_name


class SummaryWriterTest(TestCase):
    def setUp(self):
        super().setUp()
        self.log_dir = self.get_temp_dir()

    def test_scalars_in_train_and_validation_runs(self):
        with SummaryWriter(self.log_dir) as writer:
            for step, value in enumerate([0.5, 0.25, 0.125]):
                writer.scalar("epoch_loss", value, step)
            writer.scalar("epoch_loss", 0.75, 0, run="validation")
        train = read_run(os.path.join(self.log_dir, "train"))
        events = train.Tensors("epoch_loss")
        self.assertEqual([event.step for event in events], [0, 1, 2])
        values = [float(tensor_util.make_ndarray(event.tensor_proto)) for event in events]
        self.assertEqual(values, [0.5, 0.25, 0.125])
        self.assertEqual(plugin_of(train, "epoch_loss"), "scalars")
        validation = read_run(os.path.join(self.log_dir, "validation"))
        self.assertEqual(
            float(tensor_util.make_ndarray(validation.Tensors("epoch_loss")[0].tensor_proto)), 0.75
        )

    def test_histogram_equals_tensorboards_own_bucketing(self):
        data = self.rng.normal(size=1000)
        with SummaryWriter(self.log_dir) as writer:
            writer.histogram("weights", data, step=3, buckets=20)
        run = read_run(os.path.join(self.log_dir, "train"))
        (event,) = run.Tensors("weights")
        ours = tensor_util.make_ndarray(event.tensor_proto)
        reference = tensor_util.make_ndarray(
            histogram_summary.histogram_pb("weights", data, buckets=20).value[0].tensor
        )
        np.testing.assert_allclose(ours[:, :2], reference[:, :2], rtol=1e-12)
        # Same counts (a point on an inner edge may fall on either side by rounding).
        self.assertEqual(ours[:, 2].sum(), 1000)
        self.assertLessEqual(np.abs(ours[:, 2] - reference[:, 2]).sum(), 2)
        self.assertEqual(event.step, 3)
        self.assertEqual(plugin_of(run, "weights"), "histograms")

    def test_histogram_of_constant_and_empty_data(self):
        with SummaryWriter(self.log_dir) as writer:
            writer.histogram("constant", np.full(5, 2.0), step=0, buckets=4)
            writer.histogram("empty", np.array([]), step=0, buckets=4)
        run = read_run(os.path.join(self.log_dir, "train"))
        constant = tensor_util.make_ndarray(run.Tensors("constant")[0].tensor_proto)
        np.testing.assert_array_equal(constant[:, 2], [0, 0, 0, 5])
        np.testing.assert_array_equal(constant[:, :2], np.full((4, 2), 2.0))
        empty = tensor_util.make_ndarray(run.Tensors("empty")[0].tensor_proto)
        np.testing.assert_array_equal(empty, np.zeros((4, 3)))

    def test_image_text_and_hparams(self):
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(2, 1), dpi=50)
        axes.plot([0, 1], [1, 0])
        with SummaryWriter(self.log_dir) as writer:
            writer.image("curve", figure, step=0)
            writer.image("array", np.zeros((4, 6, 3)), step=0)
            writer.text("notes", "**bold**", step=0)
            writer.hparams({"learning_rate": 0.01, "optimizer": "adam", "layers": 3},
                           metrics=["epoch_loss"], run="trial-0")
        plt.close(figure)
        run = read_run(os.path.join(self.log_dir, "train"))
        width, height, png = tensor_util.make_ndarray(run.Tensors("curve")[0].tensor_proto)
        self.assertEqual((int(width), int(height)), (100, 50))
        self.assertTrue(png.startswith(b"\x89PNG"))
        width, height, _ = tensor_util.make_ndarray(run.Tensors("array")[0].tensor_proto)
        self.assertEqual((int(width), int(height)), (6, 4))
        self.assertEqual(plugin_of(run, "curve"), "images")
        self.assertEqual(plugin_of(run, "notes"), "text")
        trial = read_run(os.path.join(self.log_dir, "trial-0"))
        plugins = {plugin_of(trial, tag) for tag in trial.Tags()["tensors"]}
        self.assertEqual(plugins, {"hparams"})

    @pytest.mark.backend_independent  # its subprocess sets KERAS_BACKEND=jax itself
    def test_no_tensorflow_import_on_other_backends(self):
        script = (
            "import sys, numpy as np\n"
            "from kerastrain.tensorboard import SummaryWriter\n"
            f"w = SummaryWriter({self.log_dir!r})\n"
            "w.scalar('a', 1.0, 0); w.histogram('h', np.arange(5.0), 0); w.close()\n"
            "print('tensorflow' in sys.modules)\n"
        )
        env = dict(os.environ, KERAS_BACKEND="jax")
        output = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True,
            timeout=120, check=True,
        ).stdout
        self.assertEqual(output.strip().splitlines()[-1], "False")

    def test_bad_arguments(self):
        with self.assertRaisesRegex(TypeError, r"Argument `log_dir` must be a path"):
            SummaryWriter(3)
        with self.assertRaisesRegex(ValueError, r"Argument `flush_secs` must be > 0"):
            SummaryWriter(self.log_dir, flush_secs=0)
        with SummaryWriter(self.log_dir) as writer:
            with self.assertRaisesRegex(ValueError, r"Argument `buckets` must be an integer >= 1"):
                writer.histogram("h", [1.0], 0, buckets=0)
            with self.assertRaisesRegex(ValueError, r"Argument `image` must be a matplotlib"):
                writer.image("i", np.zeros((2, 2, 2)), 0)
            with self.assertRaisesRegex(TypeError, r"Argument `step` must be an integer"):
                writer.scalar("s", 1.0, 0.5)

    def test_unwritable_log_dir(self):
        blocker = os.path.join(self.log_dir, "file")
        with open(blocker, "w") as handle:
            handle.write("not a directory")
        with self.assertRaisesRegex(ValueError, r"Argument `log_dir` must be a writable directory"):
            check_log_dir(os.path.join(blocker, "logs"))


def test_real_tensorboard_server_reads_our_tags(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.scalar("epoch_loss", 1.0 / (step + 1), step)
            writer.histogram("dense/kernel", np.random.default_rng(step).normal(size=50), step)
        writer.scalar("epoch_loss", 0.9, 0, run="validation")
    with tensorboard_server(tmp_path) as url:
        scalars = get_json(f"{url}/data/plugin/scalars/tags",
                           until=lambda body: "validation" in body and "train" in body)
        assert "epoch_loss" in scalars["train"]
        assert "epoch_loss" in scalars["validation"]
        histograms = get_json(f"{url}/data/plugin/histograms/tags",
                              until=lambda body: "train" in body)
        assert "dense/kernel" in histograms["train"]
        series = get_json(f"{url}/data/plugin/scalars/scalars?run=train&tag=epoch_loss")
    assert [point[1] for point in series] == [0, 1, 2]
    np.testing.assert_allclose([point[2] for point in series], [1.0, 0.5, 1.0 / 3], rtol=1e-6)
