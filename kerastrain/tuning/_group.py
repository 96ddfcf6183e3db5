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
skipped), so a member sees the batches the sequential trial sees.
"""

from __future__ import annotations

import numpy as np

from kerastrain.tuning import _members

VALIDATION_CHUNK = 1024


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
        from kerastrain._backend import _vectorized_mlp as program

        self.program = program
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
        self.epoch = 0

    def set_data(self, x, y, validation_data):
        import jax.numpy as jnp

        self.count = len(x)
        self.x = jnp.asarray(np.asarray(x, np.float32).reshape(len(x), -1))
        self.y = jnp.asarray(self._labels(y))
        self._orders = np.random.RandomState(self.seed)
        self._orders.permutation(self.count)  # fit's discarded first draw
        x_val, y_val = validation_data
        x_val = np.asarray(x_val, np.float32).reshape(len(x_val), -1)
        y_val = self._labels(y_val)
        chunk = min(VALIDATION_CHUNK, len(x_val))
        chunks = -(-len(x_val) // chunk)
        pad = chunks * chunk - len(x_val)
        valid = np.concatenate([np.ones(len(x_val), np.float32), np.zeros(pad, np.float32)])
        x_val = np.concatenate([x_val, np.zeros((pad,) + x_val.shape[1:], np.float32)])
        y_val = np.concatenate([y_val, np.zeros(pad, y_val.dtype)])
        self.validation = tuple(jnp.asarray(a.reshape((chunks, chunk) + a.shape[1:]))
                                for a in (x_val, y_val, valid))
        self.validation_count = np.float32(len(valid) - pad)

    def _labels(self, y):
        y = np.asarray(y)
        if self.shape.classification:
            return y.reshape(-1).astype(np.int32)
        return y.reshape(-1).astype(np.float32)

    def skip_epochs(self, epochs):
        """Advance the data order by ``epochs`` (members continuing from a checkpoint)."""
        for _ in range(epochs):
            self._orders.permutation(self.count)
        self.epoch += epochs

    def train_epoch(self):
        """One epoch for every member; returns per-member logs (numpy arrays)."""
        order = self._orders.permutation(self.count)
        batch = self.shape.batch_size
        full = self.count // batch
        xs, ys = self._gather(order[:full * batch].reshape(full, batch))
        tail = order[full * batch:]
        extra = self._gather(tail) if len(tail) else ()
        function = self.program.train_epoch_function(self.shape, bool(len(tail)))
        self.params, self.state, self.slots, loss, metric = function(
            self.params, self.state, self.slots, self.member, xs, ys, *extra)
        val_loss, val_metric = self.program.evaluate_function(self.shape)(
            self.params, self.state, self.member, *self.validation, self.validation_count)
        self.epoch += 1
        name = "accuracy" if self.shape.classification else "mean_absolute_error"
        values = self.program.to_host((loss, metric, val_loss, val_metric))
        logs = {"loss": values[0] / self.count, name: values[1] / self.count,
                "val_loss": values[2], f"val_{name}": values[3]}
        return {key: value[:len(self.specs)] for key, value in logs.items()}

    def _gather(self, indices):
        return self.x[indices], self.y[indices]

    def state_bytes_per_member(self):
        """Bytes of one member's arrays: parameters, optimizer slots, state, best copy."""
        leaves = [self.params, self.slots, self.state, self.best, self.member]
        total = sum(int(leaf.nbytes) for tree in leaves for leaf in _leaves(tree))
        return total // self.shape.members

    def keep_best(self, improved):
        """Remember the current weights of the members flagged in ``improved``."""
        mask = np.zeros(self.shape.members, bool)
        mask[:len(improved)] = improved
        self.best = self.program.keep_best(self.best, (self.params, self.state), mask)

    def member_model(self, index, best=True):
        """Member ``index``'s own Keras model holding its best (or current) weights."""
        params, state = self.best if best else (self.params, self.state)
        params, state = self.program.to_host((params, state))
        _members.set_member_weights(self.shape, self.specs[index], self.models[index],
                                    _members.unstack(params, index),
                                    _members.unstack(state, index))
        return self.models[index]


def _leaves(tree):
    if isinstance(tree, (dict, list, tuple)):
        values = tree.values() if isinstance(tree, dict) else tree
        return [leaf for value in values for leaf in _leaves(value)]
    return [tree]
