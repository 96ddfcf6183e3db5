"""Trials of the chapter's MLP space as members of one vectorized program.

`member_spec` reads what a trial's hyperparameters choose (depth, units,
activation, optimizer, ...) the way `MLPHyperModel.build` does; `group_shape`
is what one compiled program covers (the *space's* largest depth and width,
every activation, optimizer family and schedule it may sample), so every group
of a search with the same batch size reuses one compiled program.
`stack_members` turns the members' own freshly built Keras models (the exact
initial weights, BN statistics and dropout seeds the sequential path would
start from) into padded, stacked arrays plus per-member traced
hyperparameters; `member_weights` slices one member back out for its Keras
model (checkpoints, the best model).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from kerastrain.tuning._choices import OPTIMIZERS
from kerastrain.tuning._spaces import MAXOUT_PIECES

# The program's optimizer families, by preset class, and how each transform
# hyperparameter a preset declares (`transforms.hyperparameter_table`) becomes a
# member's traced value. Declared values the program does not implement must keep
# the value it assumes (``_FIXED``), else `optimizer_settings` refuses the preset.
_FAMILIES = {"SGD": "sgd", "Adagrad": "adagrad", "Adadelta": "adadelta", "RMSprop": "rmsprop",
             "Adam": "adam", "AdamW": "adam"}
_TRACED = {
    ("Momentum", "momentum"): "momentum", ("Momentum", "nesterov"): "nesterov",
    ("AdagradScale", "initial_accumulator_value"): "initial_accumulator",
    ("AdagradScale", "epsilon"): "epsilon",
    ("AdadeltaScale", "rho"): "rho", ("AdadeltaScale", "epsilon"): "epsilon",
    ("ScaleByRMS", "beta_2"): "rho", ("ScaleByRMS", "epsilon"): "epsilon",
    ("KerasFirstMoment", "beta_1"): "beta_1", ("KerasAdamScale", "beta_2"): "beta_2",
    ("KerasAdamScale", "epsilon"): "epsilon", ("WeightDecay", "weight_decay"): "weight_decay",
}
_FIXED = {
    ("ScaleByLearningRate", "lr_decay"): 0.0, ("Momentum", "dampening"): 0.0,
    ("ScaleByRMS", "bias_correction"): False, ("ScaleByRMS", "centered"): False,
    ("ScaleByRMS", "amsgrad"): False, ("KerasFirstMoment", "bias_correction"): True,
    ("KerasAdamScale", "amsgrad"): False, ("WeightDecay", "decoupled"): True,
}


@functools.cache
def optimizer_settings(name):
    """``(family, {traced name: value})`` of the space's optimizer ``name``.

    Read from the hyperparameters the preset's transforms declare (the transform
    protocol), not restated here: a preset whose defaults change changes its
    members' traced values with it.
    """
    from kerastrain.optimizers import transforms
    from kerastrain.tuning._spaces import make_optimizer

    optimizer = make_optimizer(name, 0.01)
    family = _FAMILIES.get(type(optimizer).__name__)
    settings = {}
    for row in transforms.hyperparameter_table(optimizer):
        key = (row["class"], row["name"])
        if key in _TRACED:
            settings[_TRACED[key]] = row["value"]
        elif key in _FIXED:
            if row["value"] != _FIXED[key]:
                family = None
        elif row["numeric"] or row["kind"] == "bool":
            family = None
    if family is None:
        raise NotImplementedError(
            f"The vectorized program has no update for optimizer {name!r} "
            f"({type(optimizer).__name__}); run this search with vectorize=False.")
    return family, settings


# make_schedule's constants: exponential exp(-0.1 t/d), 1/(1 + 0.5 t/d), 0.5^floor(t/d),
# cosine over 20 periods.
SCHEDULE_SETTINGS = {"exp_rate": -0.1, "inverse_rate": 0.5, "step_gamma": 0.5, "cosine_periods": 20}


@dataclasses.dataclass(frozen=True)
class MemberSpec:
    """What one trial of the MLP space trains."""

    units: tuple
    activation: str
    optimizer: str
    learning_rate: float
    schedule: str
    l2: float
    dropout: float
    batch_norm: bool
    batch_size: int

    @property
    def depth(self):
        return len(self.units)


def member_spec(hypermodel, hp):
    """The `MemberSpec` a trial's ``hp`` chooses in ``hypermodel`` (an `MLPHyperModel`)."""
    low, high = hypermodel.layers
    depth = low if low == high else hp.get("layers")
    choice = hypermodel._choice
    units = tuple(hypermodel._widths(hp)[:depth])
    lr_low, lr_high = hypermodel.learning_rate
    return MemberSpec(
        units=units, activation=choice(hp, "activation", hypermodel.activations),
        optimizer=choice(hp, "optimizer", hypermodel.optimizers),
        learning_rate=lr_low if lr_low == lr_high else hp.get("learning_rate"),
        schedule=choice(hp, "schedule", hypermodel.schedules),
        l2=_fixed_or(hp, "l2", hypermodel.l2), dropout=_fixed_or(hp, "dropout", hypermodel.dropout),
        batch_norm=bool(choice(hp, "batch_norm", hypermodel.batch_norm)),
        batch_size=int(choice(hp, "batch_size", hypermodel.batch_sizes)))


def _fixed_or(hp, name, bounds):
    low, high = bounds
    return float(low) if low == high else float(hp.get(name))


def group_shape(hypermodel, batch_size, members, maxout=None):
    """The static shape of a program for ``hypermodel``'s whole space.

    ``maxout=True`` / ``False``: a program for the maxout members only (two
    affine pieces per unit: twice the columns) / for the other activations only
    (half the matmul work); ``None``: one program for every activation. `_buckets`
    narrows width, columns and depth to a bucket's members.
    """
    from kerastrain._backend._vectorized_mlp_math import GroupShape

    families = tuple(dict.fromkeys(optimizer_settings(o)[0] for o in hypermodel.optimizers))
    activations = tuple(hypermodel.activations)
    if maxout is not None:
        activations = tuple(a for a in activations if (a == "maxout") == maxout)
    return GroupShape(
        input_dim=int(np.prod(hypermodel.input_shape)),
        outputs=hypermodel.num_classes or 1,
        classification=hypermodel.num_classes is not None,
        depth=hypermodel.layers[1], width=max(hypermodel.units),
        columns=max(hypermodel.units) * (MAXOUT_PIECES if "maxout" in activations else 1),
        activations=activations, families=families,
        schedules=tuple(hypermodel.schedules), batch_norm=True in hypermodel.batch_norm,
        dropout=hypermodel.dropout[1] > 0, batch_size=batch_size, members=members)


def member_config(shape, spec, decay_steps):
    """The member's traced hyperparameters (host values, float32 as Keras casts them)."""
    family, settings = optimizer_settings(spec.optimizer)
    beta_1, beta_2 = settings.get("beta_1", 0.9), settings.get("beta_2", 0.999)
    rho = settings.get("rho", 0.9)
    units = [spec.units[i] if i < spec.depth else shape.width for i in range(shape.depth)]
    mask = np.zeros((shape.depth, shape.width), np.float32)
    for layer, count in enumerate(spec.units):
        mask[layer, :count] = 1.0
    f32 = np.float32
    return {
        "depth": np.int32(spec.depth), "units": np.asarray(units, np.int32), "unit_mask": mask,
        "activation": np.int32(shape.activations.index(spec.activation)),
        "batch_norm": np.bool_(spec.batch_norm),
        "keep": f32(1.0 - spec.dropout) if spec.dropout > 0 else f32(1.0),
        # TensorFlow's dropout: keep where uniform >= rate, scale 1 / (1 - rate) in float64
        "rate": f32(spec.dropout), "scale": f32(1.0 / (1.0 - spec.dropout)),
        "l2": f32(spec.l2), "family": np.int32(shape.families.index(family)),
        "momentum": f32(settings.get("momentum", 0.0)),
        "nesterov": np.bool_(settings.get("nesterov", False)),
        "beta_1": f32(beta_1), "beta_2": f32(beta_2), "one_minus_beta_1": f32(1 - beta_1),
        "one_minus_beta_2": f32(1 - beta_2), "epsilon": f32(settings.get("epsilon", 1e-7)),
        "rho": f32(rho), "one_minus_rho": f32(1 - rho),
        "weight_decay": f32(settings.get("weight_decay", 0.0)),
        "schedule": np.int32(shape.schedules.index(spec.schedule)),
        "learning_rate": f32(spec.learning_rate), "decay_steps": f32(decay_steps),
        "exp_rate": f32(SCHEDULE_SETTINGS["exp_rate"]),
        "inverse_rate": f32(SCHEDULE_SETTINGS["inverse_rate"]),
        "step_gamma": f32(SCHEDULE_SETTINGS["step_gamma"]),
        "cosine_steps": f32(decay_steps * SCHEDULE_SETTINGS["cosine_periods"]),
    }


def _columns(shape, spec, units):
    """The program columns of the member's Keras Dense columns, in Keras's order.

    Keras's maxout Dense has ``pieces * units`` columns, piece ``p`` of unit ``j`` at
    ``p * units + j``; the program puts it at ``p * (shape.columns // 2) + j`` (see
    `_vectorized_mlp_math._activation`). Other activations: the first ``units`` columns.
    """
    if spec.activation != "maxout":
        return np.arange(units)
    half = shape.columns // 2
    return np.concatenate([piece * half + np.arange(units) for piece in range(MAXOUT_PIECES)])


def member_arrays(shape, spec, model):
    """One member's padded (params, state, slots) from its freshly built Keras model."""
    import keras

    params, state = {}, {}
    fan_in = shape.input_dim
    # the seed state the program's dropout draws from: JAX's uint32 key data, or
    # TensorFlow's int32 stateless seed
    seed_dtype = np.int32 if keras.config.backend() == "tensorflow" else np.uint32
    for layer in range(shape.depth):
        kernel = np.zeros((shape.input_dim if layer == 0 else shape.width, shape.columns),
                          np.float32)
        bias = np.zeros(shape.columns, np.float32)
        gamma, beta = np.ones(shape.width, np.float32), np.zeros(shape.width, np.float32)
        mean, var = np.zeros(shape.width, np.float32), np.ones(shape.width, np.float32)
        seed = np.zeros(2, np.uint32)
        if layer < spec.depth and model is not None:  # (no model: zeros of the right shapes)
            units = spec.units[layer]
            columns = _columns(shape, spec, units)
            dense = model.get_layer(f"dense_{layer}")
            kernel[:fan_in, columns] = np.asarray(dense.kernel)
            bias[columns] = np.asarray(dense.bias)
            if spec.batch_norm:
                norm = model.get_layer(f"batch_norm_{layer}")
                gamma[:units], beta[:units] = np.asarray(norm.gamma), np.asarray(norm.beta)
                mean[:units] = np.asarray(norm.moving_mean)
                var[:units] = np.asarray(norm.moving_variance)
            if spec.dropout > 0:
                seed = np.asarray(model.get_layer(f"dropout_{layer}").seed_generator.state)
                if seed_dtype == np.int32:  # Keras's TensorFlow `_cast_seed` (int64 state)
                    seed = np.mod(seed.astype(np.int64), np.iinfo(np.int32).max - 1)
            fan_in = units
        params[f"kernel_{layer}"], params[f"bias_{layer}"] = kernel, bias
        if shape.batch_norm:
            params[f"gamma_{layer}"], params[f"beta_{layer}"] = gamma, beta
            state[f"mean_{layer}"], state[f"var_{layer}"] = mean, var
        if shape.dropout:
            state[f"seed_{layer}"] = seed.astype(seed_dtype)
    out_kernel = np.zeros((shape.width, shape.outputs), np.float32)
    out_bias = np.zeros((shape.outputs,), np.float32)
    if model is not None:
        output = model.get_layer("outputs")
        out_kernel[:fan_in], out_bias[:] = np.asarray(output.kernel), np.asarray(output.bias)
    params["out_kernel"], params["out_bias"] = out_kernel, out_bias
    from kerastrain._backend._vectorized_mlp_math import ravel

    flat = ravel(params)
    accumulator = optimizer_settings(spec.optimizer)[1].get("initial_accumulator", 0.0)
    slots = {"first": np.full_like(flat, accumulator), "second": np.zeros_like(flat),
             "iterations": np.int32(0)}
    return flat, state, slots


def stack(trees):
    """Members' trees of arrays -> one tree of arrays with a leading member axis."""
    first = trees[0]
    if isinstance(first, dict):
        return {key: stack([tree[key] for tree in trees]) for key in first}
    return np.stack([np.asarray(tree) for tree in trees])


def unstack(tree, index):
    if isinstance(tree, dict):
        return {key: unstack(value, index) for key, value in tree.items()}
    return tree[index]


def set_member_weights(shape, spec, model, flat, state):
    """Write one member's (unstacked) flat params and state into its own Keras model."""
    from kerastrain._backend._vectorized_mlp_math import unravel

    params = {key: np.asarray(value) for key, value in unravel(shape, flat).items()}
    fan_in = shape.input_dim
    for layer in range(spec.depth):
        units = spec.units[layer]
        columns = _columns(shape, spec, units)
        dense = model.get_layer(f"dense_{layer}")
        dense.kernel.assign(params[f"kernel_{layer}"][:fan_in, columns])
        dense.bias.assign(params[f"bias_{layer}"][columns])
        if spec.batch_norm:
            norm = model.get_layer(f"batch_norm_{layer}")
            norm.gamma.assign(params[f"gamma_{layer}"][:units])
            norm.beta.assign(params[f"beta_{layer}"][:units])
            norm.moving_mean.assign(state[f"mean_{layer}"][:units])
            norm.moving_variance.assign(state[f"var_{layer}"][:units])
        fan_in = units
    output = model.get_layer("outputs")
    output.kernel.assign(params["out_kernel"][:fan_in])
    output.bias.assign(params["out_bias"])


def placeholder_spec(shape):
    """A member of ``shape``'s largest architecture (for compiling before any model exists)."""
    family = shape.families[0]
    optimizer = next(name for name in OPTIMIZERS if optimizer_settings(name)[0] == family)
    return MemberSpec(units=(shape.width,) * shape.depth, activation=shape.activations[0],
                      optimizer=optimizer, learning_rate=0.01, schedule=shape.schedules[0],
                      l2=0.0, dropout=0.0, batch_norm=False, batch_size=shape.batch_size)
