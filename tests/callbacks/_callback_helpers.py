"""Shared helpers of the callbacks tests: tiny data and models, event-file reading."""

import glob
import os

import keras
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


def regression_data(samples=32, features=4, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    y = rng.normal(size=(samples, outputs)).astype("float32")
    return x, y


def mlp(features=4, hidden=8, activation="relu", outputs=1, name=None):
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(hidden, activation=activation, name="hidden"),
        keras.layers.Dense(outputs, name="out"),
    ], name=name)


def mlp_gradients(weights, x, y):
    """float64 gradients of mean((relu(x W1 + b1) W2 + b2 - y)^2), by hand (chain rule)."""
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in weights)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0)
    out = hidden @ w2 + b2
    d_out = 2 * (out - y) / out.size
    d_pre = (d_out @ w2.T) * (pre > 0)
    return [x.T @ d_pre, d_pre.sum(0), hidden.T @ d_out, d_out.sum(0)]


def read_run(directory):
    """An EventAccumulator over every event file of one run directory."""
    if not glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        raise AssertionError(f"no event file in {directory}")
    accumulator = EventAccumulator(directory, size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def scalar_series(accumulator, tag):
    """``[(step, value)]`` of a scalar tag."""
    return [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
            for event in accumulator.Tensors(tag)]


def histogram_table(accumulator, tag, index=-1):
    """``(step, [buckets, 3] table)`` of one histogram event."""
    event = accumulator.Tensors(tag)[index]
    return event.step, tensor_util.make_ndarray(event.tensor_proto)


def plugin_of(accumulator, tag):
    return accumulator.SummaryMetadata(tag).plugin_data.plugin_name
