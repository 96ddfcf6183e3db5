"""Data sources of `kerastrain tune`: bundled, .npz, .csv, module:function; and errors."""

import os

import numpy as np
import pytest

from kerastrain.testing import TestCase
from kerastrain.tuning import _config, _data


def data_config(**values):
    config = _config.default_config()["data"]
    config.update(values)
    return config


class DataTest(TestCase):
    def test_digits_splits_are_stratified_seeded_and_standardized(self):
        splits = _data.load_splits(data_config(), seed=3)
        again = _data.load_splits(data_config(), seed=3)
        np.testing.assert_array_equal(splits.x_val, again.x_val)
        self.assertEqual(splits.num_classes, 10)
        total = len(splits.y_train) + len(splits.y_val) + len(splits.y_test)
        self.assertEqual(total, 1797)  # sklearn's bundled digits
        self.assertAlmostEqual(len(splits.y_test) / total, 0.2, places=2)
        self.assertAllClose(splits.x_train.mean(axis=0), 0.0, atol=1e-5)
        counts = np.bincount(splits.y_test, minlength=10) / len(splits.y_test)
        self.assertAllClose(counts, np.full(10, 0.1), atol=0.01)

    def test_npz_with_its_own_test_split_and_csv_with_a_named_target(self):
        directory = self.get_temp_dir()
        x = self.rng.normal(size=(50, 3)).astype("float32")
        y = np.arange(50) % 2
        path = os.path.join(directory, "d.npz")
        np.savez(path, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
        splits = _data.load_splits(data_config(source=path, standardize=False), seed=0)
        np.testing.assert_array_equal(splits.x_test, x[40:])
        self.assertEqual(len(splits.y_train) + len(splits.y_val), 40)
        csv_path = os.path.join(directory, "d.csv")
        with open(csv_path, "w") as stream:
            stream.write("label,a,b\n" + "".join(f"{i % 2},{i},{2 * i}\n" for i in range(30)))
        splits = _data.load_splits(data_config(source=csv_path, target="label",
                                               standardize=False), seed=0)
        self.assertEqual(splits.num_classes, 2)
        np.testing.assert_array_equal(splits.x_train[:, 1], 2 * splits.x_train[:, 0])
        regression = _data.load_splits(data_config(source=csv_path, target="a",
                                                   task="regression"), seed=0)
        self.assertIsNone(regression.num_classes)

    def test_errors_name_the_field(self):
        directory = self.get_temp_dir()
        with pytest.raises(FileNotFoundError, match=r"Data file not found: 'nope.npz'. "
                                                    r"Received: data.source='nope.npz'"):
            _data.load_splits(data_config(source="nope.npz"), 0)
        with pytest.raises(ValueError, match=r"Argument `data.source` must be one of 'digits'"):
            _data.load_splits(data_config(source="sklearn:mnist"), 0)
        with pytest.raises(ValueError, match=r"Argument `data.source` must be 'sklearn:NAME', "
                                             r"a .npz or .csv path, or 'module:function'"):
            _data.load_splits(data_config(source="data.parquet"), 0)
        with pytest.raises(ValueError, match=r"Argument `data.source` must name an importable "
                                             r"module. Received: data.source='no_such_mod:f' "
                                             r"Importing 'no_such_mod' failed: No module named "
                                             r"'no_such_mod'. The current directory and "
                                             r"PYTHONPATH are searched.$"):
            _data.load_splits(data_config(source="no_such_mod:f"), 0)
        with pytest.raises(ValueError, match=r"Argument `data.source` must name an attribute of "
                                             r"module 'os'"):
            _data.load_splits(data_config(source="os:no_such_function"), 0)
        path = os.path.join(directory, "bad.npz")
        np.savez(path, features=np.zeros((3, 2)))
        with pytest.raises(ValueError, match=r"must be a .npz with arrays x, y or x_train, "
                                             r"y_train.*It holds \['features'\]"):
            _data.load_splits(data_config(source=path), 0)
        csv_path = os.path.join(directory, "d.csv")
        with open(csv_path, "w") as stream:
            stream.write("a,b\n1,0\n2,1\n")
        with pytest.raises(ValueError, match=r"Argument `data.target` must be a column of"):
            _data.load_splits(data_config(source=csv_path, target="label"), 0)
        with open(csv_path, "w") as stream:
            stream.write("a,b\nx,0\n")
        with pytest.raises(ValueError, match=r"must be a CSV of numbers"):
            _data.load_splits(data_config(source=csv_path), 0)
        with open(csv_path, "w") as stream:
            stream.write("a,b\n")
        with pytest.raises(ValueError, match=r"must be a CSV with a header and rows"):
            _data.load_splits(data_config(source=csv_path), 0)
        with open(csv_path, "w") as stream:
            stream.write("a,b\n1,0.5\n2,1.5\n")
        with pytest.raises(ValueError, match=r"Argument `data.task` must be 'regression' for "
                                             r"non-integer targets"):
            _data.load_splits(data_config(source=csv_path, task="classification"), 0)
        with pytest.raises(ValueError, match=r"Argument `model.build` must look like "
                                             r"'module:function'"):
            _data.import_object("build", "model.build")
