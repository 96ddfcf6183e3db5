"""One group of a user's ``build(hp)`` trials trained together, with Keras's own train step.

`KerasGroupTrainer` has `GroupTrainer`'s interface (the vectorized tuner
drives both the same way) for members that are ordinary compiled Keras
models sharing one program (`_backend._vectorized_keras.signature`): the
step is Keras's ``train_step`` / ``test_step``, mapped over the members, so
whatever the user's model, loss, metrics and optimizer compute, each member
computes exactly that. Per-member values are what Keras keeps in variables:
the weights, the optimizer state (and a float learning rate), the metric
state and the dropout seed state.

Data order is each member's own ``model.fit(shuffle=True)`` order: the NumPy
global generator's state right after the member's model is built (the
sequential path seeds it with the search seed before building), one
discarded permutation (fit's first look at the data), then one per epoch.
"""

from __future__ import annotations

import numpy as np

from kerastrain import _compat


def _batch(array, rows):
    return np.asarray(array)[rows]


class KerasGroupTrainer:
    """Trains ``models`` (built, compiled Keras models with one `signature`) as one program.

    Args:
        models: the members' models, each built by the search exactly as the
            sequential path builds it.
        rng_states: each member's ``np.random.get_state()`` right after its build.
        batch_size: ``model.fit``'s batch size (and the validation batch size).
        functions: the ``(train, test)`` functions of an earlier group of the same
            signature (compiled once per signature and shape).
    """

    def __init__(self, models, rng_states, batch_size, functions=None):
        from kerastrain._backend import _vectorized_keras as program

        self.program = program
        self.models, self.batch_size = list(models), int(batch_size)
        self.template = self.models[0]
        self._orders = []
        for state in rng_states:
            generator = np.random.RandomState()
            generator.set_state(state)
            self._orders.append(generator)
        states = [program.model_state(model) for model in self.models]
        self.state = program.stack(states)
        self.initial_metrics = self.state[3]
        self.best = program.copy(self.state[:2])
        self.compiled = None
        # (train, test) jitted for the group's program: any member of a group with the
        # same signature can be the template (the caller caches them per signature).
        self.functions = functions or (program.train_function(self.template),
                                       program.test_function(self.template))
        self._train, self._test = self.functions
        self._log_names = None

    @staticmethod
    def prepare(model, x, y, batch_size):
        """Build ``model``'s metrics, loss and optimizer as ``fit`` does before training."""
        _compat.symbolic_build(model, (_batch(x, slice(0, batch_size)),
                                       _batch(y, slice(0, batch_size))))

    def set_data(self, x, y, validation_data=None, rows=None):
        """Shared ``(x, y)`` and ``validation_data``, or each member's own ``rows`` of ``x, y``."""
        members = len(self.models)
        self.x, self.y = self.program.to_device(np.asarray(x)), self.program.to_device(np.asarray(y))
        if rows is None:
            x_val, y_val = validation_data
            self.x_val, self.y_val = self.program.to_device(np.asarray(x_val)), self.program.to_device(np.asarray(y_val))
            self.train_rows = np.tile(np.arange(len(x), dtype=np.int32), (members, 1))
            self.val_rows = np.tile(np.arange(len(x_val), dtype=np.int32), (members, 1))
        else:
            self.x_val, self.y_val = self.x, self.y
            counts = {(len(t), len(v)) for t, v in rows}
            if len(counts) != 1:
                raise ValueError(f"Members of one group need as many rows; got {counts}.")
            self.train_rows = np.stack([np.asarray(t, np.int32) for t, _ in rows])
            self.val_rows = np.stack([np.asarray(v, np.int32) for _, v in rows])
        for generator in self._orders:  # fit's first look at the data
            generator.permutation(self.train_rows.shape[1])

    def compile(self):
        return None  # (compiles at the first epoch: Keras's step traces the models)

    def _run(self, function, state, x, y, rows):
        """Full batches in one scan, then the last, smaller batch (as fit's two shapes)."""
        count = rows.shape[1]
        full = count // self.batch_size * self.batch_size
        logs = None
        for start, stop, size in ((0, full, self.batch_size), (full, count, count - full)):
            if stop == start:
                continue
            index = rows[:, start:stop].reshape(len(rows), -1, size).transpose(1, 0, 2)
            state, logs = function(state, x, y, self.program.to_device(index))
        return state, logs

    def train_epoch(self):
        """One epoch for every member; per-member logs (numpy arrays), fit's names."""
        order = np.stack([generator.permutation(self.train_rows.shape[1])
                          for generator in self._orders])
        rows = np.take_along_axis(self.train_rows, order, axis=1)
        trainable, non_trainable, optimizer, _ = self.state
        state = (trainable, non_trainable, optimizer, self.program.copy(self.initial_metrics))
        self.state, logs = self._run(self._train, state, self.x, self.y, rows)
        test_state = (self.state[0], self.state[1], self.program.copy(self.initial_metrics))
        _, val_logs = self._run(self._test, test_state, self.x_val, self.y_val, self.val_rows)
        logs = dict(self.program.to_host(logs))
        logs.update({f"val_{key}": value
                     for key, value in self.program.to_host(val_logs).items()})
        self._log_names = tuple(logs)
        return {key: np.asarray(value, np.float64) for key, value in logs.items()}

    def log_names(self):
        """The keys of `train_epoch`'s logs (``model.fit``'s names)."""
        if self._log_names is None:
            train = self.program.log_names(self.template, self.x[:1], self.y[:1])
            self._log_names = tuple(train) + tuple(f"val_{name}" for name in train)
        return self._log_names

    def keep_best(self, improved):
        """Remember the current weights of the members flagged in ``improved``."""
        self.best = self.program.keep_where(self.best, self.state[:2], np.asarray(improved))

    def member_model(self, index, best=True):
        """Member ``index``'s own Keras model holding its best (or current) weights."""
        trainable, non_trainable = self.program.to_host(self.best if best else self.state[:2])
        model = self.models[index]
        for variable, value in zip(model.trainable_variables, trainable):
            variable.assign(value[index])
        for variable, value in zip(model.non_trainable_variables, non_trainable):
            variable.assign(value[index])
        return model

    def state_bytes_per_member(self):
        leaves = self.program.leaves((self.state, self.best))
        return sum(int(leaf.nbytes) for leaf in leaves) // len(self.models)
