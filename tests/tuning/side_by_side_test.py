"""Groups of one round side by side: one group's epoch computes while this thread
records, builds or starts another's (the first finished is resumed first; with a pruner,
strictly in turn), and nothing a member computes changes (the same search one group at
a time gives the same numbers)."""

import io
from concurrent.futures import Future

import keras
import numpy as np
import pytest
from _tuning_helpers import results_rows

from kerastrain.tuning import _vectorized
from kerastrain.tuning._spaces import MLPHyperModel
from kerastrain.tuning._tuner import create_tuner, search


def _done():
    future = Future()
    future.set_result(None)
    return future


def _group_steps(name, epochs, events, fail_at=None):
    for epoch in range(epochs):
        events.append(f"{name}{epoch}")
        if epoch == fail_at:
            raise RuntimeError(f"{name} failed")
        yield _done()


def test_in_turn_groups_resume_strictly_in_turn_at_most_width_at_once():
    events = []
    groups = [_group_steps("a", 3, events), _group_steps("b", 1, events),
              _group_steps("c", 2, events)]
    _vectorized._side_by_side(groups, width=2, in_turn=True)
    # a and b in turn; b ends (its generator returns on its second resume), c starts in
    # its place and takes its turns after a's: the order depends on nothing but the epochs
    assert events == ["a0", "b0", "a1", "c0", "a2", "c1"]


def test_the_group_whose_epoch_finished_first_is_resumed_first():
    events, slow = [], Future()

    def first():
        events.append("a0")
        yield slow  # still computing while b's epochs finish
        events.append("a1")

    def second():
        events.append("b0")
        yield _done()
        events.append("b1")
        slow.set_result(None)  # a's epoch finishes now
        yield _done()
        events.append("b2")

    _vectorized._side_by_side([first(), second()], width=2)
    assert events == ["a0", "b0", "b1", "a1", "b2"]  # then, both done, the first in order


def test_one_group_at_a_time_with_width_one():
    events = []
    _vectorized._side_by_side([_group_steps("a", 2, events), _group_steps("b", 2, events)],
                              width=1)
    assert events == ["a0", "a1", "b0", "b1"]


def test_an_error_in_one_group_reaches_the_caller():
    events = []
    groups = [_group_steps("a", 3, events), _group_steps("b", 3, events, fail_at=1)]
    with pytest.raises(RuntimeError, match="b failed"):
        _vectorized._side_by_side(groups, width=2, in_turn=True)
    assert events == ["a0", "b0", "a1", "b1"]


def test_two_group_bars_advance_separately():
    from rich.console import Console

    from kerastrain.tuning._command import _Progress

    progress = _Progress(Console(file=io.StringIO(), width=100), max_trials=4)
    first = progress.start_group(["0", "1"], 3)
    second = progress.start_group(["2", "3"], 3)
    progress.group_epoch("val_accuracy", 0.5, 0, 0, group=first)
    progress.group_epoch("val_accuracy", 0.7, 1, 0, group=first)
    progress.group_epoch("val_accuracy", 0.6, 0, 1, group=second)
    tasks = {task.id: task for task in progress.bar.tasks}
    assert (tasks[first].completed, tasks[second].completed) == (2, 1)
    assert tasks[first].description == "trials 0-1 (2 as one) best val_accuracy=0.7000, 1 pruned"
    assert tasks[second].description == "trials 2-3 (2 as one) best val_accuracy=0.6000, 1 failed"


@pytest.mark.skipif(keras.config.backend() not in ("jax", "tensorflow"),
                    reason="the MLP program is JAX's and TensorFlow's")
def test_a_round_of_two_batch_sizes_runs_side_by_side_with_the_same_numbers(tmp_path,
                                                                            monkeypatch):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    hypermodel = MLPHyperModel(input_shape=(64,), num_classes=10, layers=(1, 2), units=(8, 16),
                               activations=("relu", "tanh"), optimizers=("adam", "sgd"),
                               schedules=("constant",), l2=(0.0, 0.0), dropout=(0.0, 0.2),
                               batch_sizes=(16, 32))
    events = []
    record = _vectorized._record_epoch

    def record_epoch(tuner, members, logs, epoch, objective):  # the order of the records
        events.append((members[0].record.spec.batch_size, epoch))
        return record(tuner, members, logs, epoch, objective)

    side_by_side = _vectorized._side_by_side
    monkeypatch.setattr(_vectorized, "_record_epoch", record_epoch)
    rows = {}
    for run, width, in_turn in (("in_turn", 2, True), ("first_finished", 2, False),
                                ("one_at_a_time", 1, False)):
        monkeypatch.setattr(_vectorized, "_side_by_side", lambda groups, _width=width,
                            _in_turn=in_turn, **_: side_by_side(groups, _width, _in_turn))
        events.clear()
        tuner = create_tuner("random", hypermodel, max_trials=8, max_epochs=3, seed=3,
                             directory=str(tmp_path / run), vectorize=8)
        search(tuner, x[:400], y[:400], validation_data=(x[400:500], y[400:500]))
        rows[run] = results_rows(tuner)
        assert sorted({size for size, _ in events}) == [16, 32], "one round, two groups"
        first = events[0][0]
        second = 48 - first
        if run == "in_turn":  # the groups' epochs alternate: both run side by side
            assert events == [(size, epoch) for epoch in range(3) for size in (first, second)]
        elif run == "one_at_a_time":
            assert events == [(size, epoch) for size in (first, second) for epoch in range(3)]
        else:
            assert sorted(events) == sorted((size, epoch) for size in (16, 32)
                                            for epoch in range(3))
    for run in ("in_turn", "first_finished"):
        assert set(rows[run]) == set(rows["one_at_a_time"])
        for trial_id, row in rows[run].items():
            other = rows["one_at_a_time"][trial_id]
            assert (row["status"], row["batch_size"], row["epochs"]) == \
                (other["status"], other["batch_size"], other["epochs"])
            assert row["score"] == other["score"], (run, trial_id)  # the same numbers
