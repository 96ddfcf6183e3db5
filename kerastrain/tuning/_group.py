"""One group of MLP trials trained together: data order, epochs, metrics, best weights.

`GroupTrainer` owns one compiled program (shared through its cache by every
group of the same shape) and the stacked state of its members. It knows
nothing of KerasTuner: the vectorized tuner (`_vectorized.py`) feeds it
members and reads per-epoch logs back, member by member.

Data order is the sequential path's: ``model.fit(shuffle=True)`` on JAX
draws ``np.random.permutation(n)`` from NumPy's global generator, which each
trial seeds with the search seed: once before the first epoch (its first
iterator, made to look at the data, is discarded) and then once per epoch.
Here every member gets that same sequence of permutations (the first one
skipped), so a member sees the batches the sequential trial sees. (TensorFlow's
``model.fit`` shuffles inside ``tf.data``: there the members see these NumPy
permutations, a random order of the same kind, not the sequential trial's.)

The program is the backend's (`mlp_program`): JAX's ``jit(scan(vmap))`` or
TensorFlow's ``tf.function(while_loop(vectorized_map))``, one member's math shared.
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from kerastrain.tuning import _members

VALIDATION_CHUNK = 1024
# A group's compiled programs, in the order of `GroupTrainer.compiled` (`programs`).
PROGRAMS = ("train", "evaluate", "keep_best")


def programs():
    """The backend program's `PROGRAMS`: where it trains and evaluates an epoch as one
    program (JAX: ``train_and_evaluate_function``), ``"train"`` is that one and there is
    no separate ``"evaluate"`` (one compile fewer per group)."""
    if hasattr(mlp_program(), "train_and_evaluate_function"):
        return ("train", "keep_best")
    return PROGRAMS


def mlp_program():
    """The backend's program module: `_vectorized_mlp` (JAX) or `_vectorized_mlp_tf`."""
    import keras

    if keras.config.backend() == "tensorflow":
        from kerastrain._backend import _vectorized_mlp_tf as program
    else:
        from kerastrain._backend import _vectorized_mlp as program
    return program


class GroupTrainer:
    """Trains ``specs`` (padded to ``shape.members``) as one program.

    Args:
        shape: the `GroupShape` (from `_members.group_shape`).
        specs: the members' `MemberSpec`s (at most ``shape.members``).
        models: each member's freshly built Keras model (initial weights).
        decay_steps: the schedules' decay period (the hypermodel's).
        seed: the search seed (data order).
    """

    def __init__(self, shape, specs, models, decay_steps, seed):
        self.program = program = mlp_program()
        self.shape, self.specs, self.models = shape, list(specs), list(models)
        padded = self.specs + [self.specs[-1]] * (shape.members - len(self.specs))
        padded_models = self.models + [self.models[-1]] * (shape.members - len(self.models))
        arrays = [_members.member_arrays(shape, s, m) for s, m in zip(padded, padded_models)]
        self.params = program.to_device(_members.stack([a[0] for a in arrays]))
        self.state = program.to_device(_members.stack([a[1] for a in arrays]))
        self.slots = program.to_device(_members.stack([a[2] for a in arrays]))
        self.member = program.to_device(_members.stack(
            [_members.member_config(shape, s, decay_steps) for s in padded]))
        self.best = program.copy((self.params, self.state))  # the epoch step donates them
        self.seed = seed
        self._orders = None
        self.compiled = None  # one per `programs()`: compiled, a Future of it, or None (jit)

    def compile(self, program):
        """One of this group's `programs()`, compiled for its arrays (after `set_data`).

        A placeholder trainer (zeros of the same shapes) compiles a group's programs
        in background threads while the members' models are being built.
        """
        if program == "train":
            index, valid = self._batches(np.arange(self.count))
            function = self._train_function()
            args = (self.params, self.state, self.slots, self.member, self.x, self.y, index, valid)
            if self._fused:
                args += (self.x_val, self.y_val, *self.validation)
        elif program == "evaluate":
            function = self.program.evaluate_function(self.shape, self.per_member)
            args = (self.params, self.state, self.member, self.x_val, self.y_val, *self.validation)
        else:
            function = self.program.keep_best
            args = (self.best, (self.params, self.state), np.zeros(self.shape.members, bool))
        return self.program.precompile(function, args, optimize=program != "keep_best")

    def _program(self, name):
        """The program ``name`` of `programs()`: precompiled (waiting for its background
        compile where it is still running), else jitted."""
        compiled = None if self.compiled is None else self.compiled[programs().index(name)]
        if isinstance(compiled, Future):
            # A failed background compile (e.g. out of memory): the jitted call compiles
            # and raises what is wrong.
            compiled = None if compiled.exception() is not None else compiled.result()
        if compiled is not None:
            return compiled
        if name == "train":
            return self._train_function()
        if name == "evaluate":
            return self.program.evaluate_function(self.shape, self.per_member)
        return self.program.keep_best

    @property
    def _fused(self):
        return hasattr(self.program, "train_and_evaluate_function")

    def _train_function(self):
        if self._fused:
            return self.program.train_and_evaluate_function(self.shape, self.per_member)
        return self.program.train_epoch_function(self.shape, self.per_member)

    def set_data(self, x, y, validation_data=None, rows=None):
        """The data: shared by every member, or each member's own rows of ``x`` / ``y``.

        Args:
            x, y: the training data (with ``rows``: all the data the folds index).
            validation_data: ``(x_val, y_val)`` shared by every member (without ``rows``).
            rows: per member ``(train_rows, validation_rows)`` (cross-validation folds;
                every member of a group has as many training rows).
        """
        self.x = self.program.to_device(np.asarray(x, np.float32).reshape(len(x), -1))
        self.y = self.program.to_device(self._labels(y))
        self.per_member = rows is not None
        if self.per_member:
            rows = list(rows) + [rows[-1]] * (self.shape.members - len(rows))
            counts = {len(train) for train, _ in rows}
            if len(counts) != 1:
                raise ValueError(f"Members of one group need as many training rows; got {counts}.")
            self.count = counts.pop()
            self.train_rows = np.stack([np.asarray(train, np.int32) for train, _ in rows])
            validation = [np.asarray(v, np.int32) for _, v in rows]
            self.x_val, self.y_val = self.x, self.y
        else:
            self.count = len(x)
            x_val, y_val = validation_data
            self.x_val = self.program.to_device(np.asarray(x_val, np.float32).reshape(len(x_val), -1))
            self.y_val = self.program.to_device(self._labels(y_val))
            validation = [np.arange(len(x_val), dtype=np.int32)]
        self._orders = np.random.RandomState(self.seed)
        self._orders.permutation(self.count)  # fit's discarded first draw
        longest = max(len(v) for v in validation)
        chunk = min(VALIDATION_CHUNK, longest)
        chunks = -(-longest // chunk)
        index = np.zeros((len(validation), chunks * chunk), np.int32)
        valid = np.zeros((len(validation), chunks * chunk), np.float32)
        for member, rows_of in enumerate(validation):
            index[member, :len(rows_of)], valid[member, :len(rows_of)] = rows_of, 1.0
        shape = (-1, chunks, chunk) if self.per_member else (chunks, chunk)
        self.validation = (self.program.to_device(index.reshape(shape)), self.program.to_device(valid.reshape(shape)),
                           self.program.to_device(valid.sum(axis=1) if self.per_member else valid.sum()))

    def _labels(self, y):
        y = np.asarray(y)
        if self.shape.classification:
            return y.reshape(-1).astype(np.int32)
        return y.reshape(-1).astype(np.float32)

    def train_epoch(self):
        """One epoch for every member; returns per-member logs (numpy arrays)."""
        index, valid = self._batches(self._orders.permutation(self.count))
        arguments = (self.params, self.state, self.slots, self.member, self.x, self.y, index,
                     valid)
        if self._fused:
            (self.params, self.state, self.slots, loss, metric, val_loss,
             val_metric) = self._program("train")(*arguments, self.x_val, self.y_val,
                                                  *self.validation)
        else:
            self.params, self.state, self.slots, loss, metric = self._program("train")(
                *arguments)
            val_loss, val_metric = self._program("evaluate")(
                self.params, self.state, self.member, self.x_val, self.y_val,
                *self.validation)
        values = self.program.to_host((loss, metric, val_loss, val_metric))
        scale = (self.count, self.count, 1, 1)
        return {key: value[:len(self.specs)] / divisor
                for key, value, divisor in zip(self.log_names(), values, scale)}

    def log_names(self):
        """The keys of `train_epoch`'s logs, as ``model.fit`` names them."""
        name = "accuracy" if self.shape.classification else "mean_absolute_error"
        return ("loss", name, "val_loss", f"val_{name}")

    def _batches(self, order):
        """``(index, valid)`` of an epoch in ``order``: the last, smaller batch padded."""
        batch = self.shape.batch_size
        batches = -(-self.count // batch)
        padding = batches * batch - self.count
        valid = np.ones(batches * batch, np.float32)
        valid[self.count:] = 0.0
        order = np.concatenate([order, np.zeros(padding, order.dtype)])
        if self.per_member:  # (members, count) -> (batches, members, batch)
            rows = self.train_rows[:, order]
            index = rows.reshape(len(rows), batches, batch).transpose(1, 0, 2)
        else:
            index = order.reshape(batches, batch)
        return self.program.to_device(index.astype(np.int32)), self.program.to_device(valid.reshape(batches, batch))

    def state_bytes_per_member(self):
        """Bytes of one member's arrays: parameters, optimizer slots, state, best copy."""
        leaves = [self.params, self.slots, self.state, self.best, self.member]
        total = sum(_nbytes(leaf) for tree in leaves for leaf in _leaves(tree))
        return total // self.shape.members

    def keep_best(self, improved):
        """Remember the current weights of the members flagged in ``improved``."""
        mask = np.zeros(self.shape.members, bool)
        mask[:len(improved)] = improved
        self.best = self._program("keep_best")(self.best, (self.params, self.state), mask)

    def member_model(self, index, best=True):
        """Member ``index``'s own Keras model holding its best (or current) weights."""
        params, state = self.best if best else (self.params, self.state)
        params, state = self.program.to_host((params, state))
        _members.set_member_weights(self.shape, self.specs[index], self.models[index],
                                    _members.unstack(params, index),
                                    _members.unstack(state, index))
        return self.models[index]


def _nbytes(array):
    """Bytes of a JAX or TensorFlow array (a ``tf.Tensor`` has no ``nbytes``)."""
    itemsize = getattr(array.dtype, "itemsize", None) or array.dtype.size
    return int(np.prod(array.shape)) * itemsize


def _leaves(tree):
    if isinstance(tree, (dict, list, tuple)):
        values = tree.values() if isinstance(tree, dict) else tree
        return [leaf for value in values for leaf in _leaves(value)]
    return [tree]
