"""Can TensorFlow train K trials as one program? `tf.vectorized_map` over a stateless step.

Issue 16.7: on TensorFlow kerastrain's vectorized search falls back to one trial at
a time. This benchmark measures whether TensorFlow could do it instead, on the
digits MLP of `kerastrain tune` (scikit-learn's bundled digits, 1,440 training
rows, 64-128-128-10, ReLU, dropout 0.2 after each hidden layer, Adam, batch 32).
K members (K = 8 and 32) share shapes; each has its own initial weights, its own
learning rate (a traced value, one per member) and its own dropout seed state.
One process, TensorFlow backend, CPU:

* ``sequential``: K plain Keras trials, one after the other (build, compile,
  ``model.fit``): the baseline. Its seconds per trial do not depend on K, so it
  trains ``min(K, 8)`` trials and K uses the same per-trial time.
* ``vmap_*``: one stateless train step (``model.stateless_call`` under a
  ``tf.GradientTape``, an Adam update written with ops so the learning rate is a
  tensor), mapped over the stacked members with ``tf.vectorized_map``
  (``fallback_to_while_loop=False`` first: an op pfor cannot vectorize is an
  error, recorded verbatim; then with the default fallback, which runs such ops
  in a while loop), inside ``tf.function`` with and without XLA
  (``jit_compile``), driven either by a Python loop over batches (``_step``: one
  call per batch) or by a ``tf.while_loop`` over the epoch's batches
  (``_epoch``: one call per epoch).
* ``batched_epoch``: the same members batched by hand (stacked kernels,
  ``tf.einsum``; each member's dropout mask drawn from its own seed exactly as
  Keras's ``Dropout`` draws it), no XLA: what ``vectorized_map`` should produce.

Every vectorized variant is checked against the same stateless step run for one
member alone (no map, same ``jit_compile``): the weights of the first and last
member after the epochs, within 1e-5 relative. Reported per variant and K: whether
it works (or the exact error) and which ops pfor ran in a while loop, compile
seconds (the first epoch's seconds minus a later epoch's), seconds per epoch for
all K members, and three ratios over the sequential baseline: trials per hour
(whole trials, building the K models and compiling included), the same in this
process's CPU seconds (on a CPU shared with other jobs wall time also measures the
neighbours), and a later epoch alone (what longer trials tend to). TensorFlow only:
``KERAS_BACKEND=tensorflow python -m bench tf_vectorized`` (on another backend it says so and
measures nothing). ``--quick``: K = 4, 2 epochs.
"""

from __future__ import annotations

import logging
import re
import time
import traceback

import numpy as np

ROWS = 1440  # 45 full batches of 32 (no ragged last batch to retrace)
BATCH = 32
WIDTH = 128
RATE = 0.2
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Keras Adam's defaults
TOLERANCE = 1e-5
BASELINE_TRIALS = 8


def _data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[:ROWS]
    return (digits.data[order] / 16.0).astype("float32"), digits.target[order].astype("int32")


def _learning_rate(member):
    """Member i's learning rate: 3e-4 to 3e-3 on a log scale over members 0-31."""
    return np.float32(3e-4 * 10.0 ** (member / 31.0))


def _build(member):
    import keras

    def glorot(index):
        return keras.initializers.GlorotUniform(seed=1000 * member + index)

    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(WIDTH, activation="relu", kernel_initializer=glorot(0)),
        keras.layers.Dropout(RATE, seed=1000 * member + 1),
        keras.layers.Dense(WIDTH, activation="relu", kernel_initializer=glorot(2)),
        keras.layers.Dropout(RATE, seed=1000 * member + 3),
        keras.layers.Dense(10, kernel_initializer=glorot(4)),
    ])


def _batches(epochs, seed=1):
    """Per epoch, the row order (one permutation, shared by every member)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(ROWS)[: ROWS // BATCH * BATCH].reshape(-1, BATCH)
            for _ in range(epochs)]


# ---------------------------------------------------------------- the baseline


def _sequential(x, y, trials, epochs):
    """``{seconds, cpu seconds}_per_trial`` and a later epoch's seconds (median of trials)."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    later = []
    start, cpu = time.perf_counter(), time.process_time()
    for member in range(trials):
        seconds = []
        model = _build(member)
        model.compile(optimizer=keras.optimizers.Adam(float(_learning_rate(member))),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0,
                  callbacks=[EpochClock()])
        later.append(min(seconds[1:]))
    return {"seconds_per_trial": (time.perf_counter() - start) / trials,
            "cpu_seconds_per_trial": (time.process_time() - cpu) / trials,
            "seconds_per_later_epoch": float(np.median(later)), "epochs": epochs,
            "trials_timed": trials}


# ----------------------------------------------------- the stateless step (vmap)


def _initial_state(tf, members):
    """Stacked ``(trainable, non_trainable, m, v, t, lr)`` of these members."""
    models = [_build(member) for member in members]
    trainable = [tf.stack([m.trainable_variables[i].value for m in models])
                 for i in range(len(models[0].trainable_variables))]
    non_trainable = [tf.stack([m.non_trainable_variables[i].value for m in models])
                     for i in range(len(models[0].non_trainable_variables))]
    zeros = [tf.zeros_like(w) for w in trainable]
    rates = np.array([_learning_rate(member) for member in members], "float32")
    return (trainable, non_trainable, zeros, list(zeros), tf.zeros((len(members),)),
            tf.constant(rates)), models[0]


def _adam(tf, weights, grads, m, v, t, lr):
    """Keras's Adam (epsilon outside the root, bias correction folded into lr)."""
    t = t + 1.0
    alpha = lr * tf.sqrt(1.0 - BETA_2 ** t) / (1.0 - BETA_1 ** t)
    m = [mi + (g - mi) * (1.0 - BETA_1) for mi, g in zip(m, grads)]
    v = [vi + (tf.square(g) - vi) * (1.0 - BETA_2) for vi, g in zip(v, grads)]
    weights = [w - alpha * mi / (tf.sqrt(vi) + EPSILON) for w, mi, vi in zip(weights, m, v)]
    return weights, m, v, t


def _stateless_step(tf, model):
    """``step(state, x, y) -> (state, loss)`` for ONE member (unbatched state)."""
    import keras

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def step(state, x, y):
        trainable, non_trainable, m, v, t, lr = state
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            logits, non_trainable = model.stateless_call(trainable, non_trainable, x,
                                                         training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, trainable)
        trainable, m, v, t = _adam(tf, trainable, grads, m, v, t, lr)
        return (trainable, list(non_trainable), m, v, t, lr), loss

    return step


def _vmap(tf, step, fallback):
    def mapped(state, x, y):
        return tf.vectorized_map(lambda member: step(member, x, y), state,
                                 fallback_to_while_loop=fallback)
    return mapped


def _batched_step(tf):
    """The K members batched by hand: ``(K, in, out)`` kernels, ``tf.einsum``."""
    def dropout(h, seeds):
        # Keras's TF dropout: stateless_dropout(x, rate, seed=floormod(state, 2^31-2)),
        # one draw per member from its own state (the per-member loop unrolls K ops).
        masks = tf.stack([tf.nn.experimental.stateless_dropout(
            tf.ones(tf.shape(h)[1:]), rate=RATE,
            seed=tf.cast(tf.math.floormod(seeds[i], 2 ** 31 - 2), tf.int32))
            for i in range(h.shape[0])])
        return h * masks

    def step(state, x, y):
        trainable, non_trainable, m, v, t, lr = state
        k1, b1, k2, b2, k3, b3 = trainable
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            h = tf.nn.relu(tf.einsum("bi,kio->kbo", x, k1) + b1[:, None, :])
            h = dropout(h, non_trainable[0])
            h = tf.nn.relu(tf.einsum("kbi,kio->kbo", h, k2) + b2[:, None, :])
            h = dropout(h, non_trainable[1])
            logits = tf.einsum("kbi,kio->kbo", h, k3) + b3[:, None, :]
            losses = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.broadcast_to(y, tf.shape(logits)[:2]), logits), axis=1)
            total = tf.reduce_sum(losses)  # members independent: d total / d member = its own
        grads = tape.gradient(total, trainable)
        expand = [tf.reshape(t, (-1,) + (1,) * (w.shape.rank - 1)) for w in trainable]
        rates = [tf.reshape(lr, (-1,) + (1,) * (w.shape.rank - 1)) for w in trainable]
        new_t = t + 1.0
        weights, new_m, new_v = [], [], []
        for w, g, mi, vi, ti, lri in zip(trainable, grads, m, v, expand, rates):
            (w,), (mi,), (vi,), _ = _adam(tf, [w], [g], [mi], [vi], ti, lri)
            weights.append(w)
            new_m.append(mi)
            new_v.append(vi)
        increment = tf.constant([0, 1], dtype=non_trainable[0].dtype)
        non_trainable = [s + increment for s in non_trainable]
        return (weights, non_trainable, new_m, new_v, new_t, lr), losses

    return step


# ---------------------------------------------------------------- the drivers


def _driver(tf, step, loop, jit):
    """``run_epoch(state, x, y, order) -> state``: a Python loop or one while_loop."""
    if loop == "step":
        compiled = tf.function(step, jit_compile=jit, reduce_retracing=False)

        def run_epoch(state, x, y, order):
            for rows in order:
                state, _ = compiled(state, tf.gather(x, rows), tf.gather(y, rows))
            return state

        return run_epoch

    def epoch(state, xs, ys):
        def body(i, state):
            state, _ = step(state, xs[i], ys[i])
            return i + 1, state

        _, state = tf.while_loop(lambda i, _: i < tf.shape(xs)[0], body,
                                 (tf.constant(0), state))
        return state

    compiled = tf.function(epoch, jit_compile=jit, reduce_retracing=False)

    def run_epoch(state, x, y, order):
        return compiled(state, tf.gather(x, order), tf.gather(y, order))

    return run_epoch


def _train(tf, run_epoch, state, x, y, orders):
    """``(state, wall seconds per epoch, this process's CPU seconds per epoch)``."""
    seconds, cpu = [], []
    for order in orders:
        start, cpu_start = time.perf_counter(), time.process_time()
        state = run_epoch(state, x, y, order)
        tf.nest.map_structure(lambda t: t.numpy(), state)  # wait for it
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return state, seconds, cpu


def _member(state, index):
    return [w[index].numpy() for w in state[0]]


def _relative_error(a, b):
    return max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30))
               for x, y in zip(a, b))


class _PforFallbacks(logging.Handler):
    """Collects the ops pfor runs in a while loop (TensorFlow logs one warning each)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.ops = set()

    def emit(self, record):
        match = re.search(r"converting (\w+) cause there is no registered converter",
                          record.getMessage())
        if match:
            self.ops.add(match.group(1))

    def __enter__(self):
        logging.getLogger("tensorflow").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("tensorflow").removeHandler(self)


def _variant(tf, make_step, loop, jit, k, x, y, orders, reference):
    start, cpu_start = time.perf_counter(), time.process_time()
    state, model = _initial_state(tf, range(k))
    build = (time.perf_counter() - start, time.process_time() - cpu_start)
    result = {"works": False, "build_seconds": build[0]}
    try:
        run_epoch = _driver(tf, make_step(model), loop, jit)
        state, seconds, cpu = _train(tf, run_epoch, state, x, y, orders)
    except Exception as error:  # what the variant cannot do is the measurement
        result["error"] = f"{type(error).__name__}: {error}".strip()[:2000]
        result["error_where"] = traceback.format_exc(limit=-3)[-1500:]
        return result
    later = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
    later_cpu = min(cpu[1:]) if len(cpu) > 1 else cpu[0]
    errors = {}
    for index in sorted({0, k - 1}):
        errors[index] = _relative_error(_member(state, index), reference(index, jit))
    result.update({
        "works": max(errors.values()) <= TOLERANCE,
        "max_relative_error_vs_alone": max(errors.values()),
        "compile_seconds": seconds[0] - later,
        "seconds_per_epoch": later,
        "epoch_seconds": seconds,
        "cpu_compile_seconds": cpu[0] - later_cpu,
        "cpu_seconds_per_epoch": later_cpu,
        "seconds_per_trial": (build[0] + sum(seconds)) / k,
        "cpu_seconds_per_trial": (build[1] + sum(cpu)) / k,
    })
    return result


def run(quick=False):
    import keras

    if keras.config.backend() != "tensorflow":  # `python -m bench` (all) goes on
        reason = ("bench tf_vectorized measures TensorFlow: "
                  "KERAS_BACKEND=tensorflow python -m bench tf_vectorized")
        print(f"  skipped: {reason}")
        return {"skipped": reason, "ratios": {}}
    import tensorflow as tf

    x_np, y_np = _data()
    x, y = tf.constant(x_np), tf.constant(y_np)
    epochs = 2 if quick else 3
    sizes = (4,) if quick else (8, 32)
    orders = _batches(epochs)

    alone = {}

    def reference(index, jit):
        """Member ``index`` trained alone by the same stateless step (no map)."""
        key = (index, jit)
        if key not in alone:
            state, model = _initial_state(tf, [index])
            one = tf.nest.map_structure(lambda t: t[0], state)
            run_epoch = _driver(tf, _stateless_step(tf, model), "epoch", jit)
            one, _, _ = _train(tf, run_epoch, one, x, y, orders)
            alone[key] = [w.numpy() for w in one[0]]
        return alone[key]

    strict = lambda model: _vmap(tf, _stateless_step(tf, model), False)  # noqa: E731
    vmap = lambda model: _vmap(tf, _stateless_step(tf, model), True)  # noqa: E731
    batched = lambda model: _batched_step(tf)  # noqa: E731
    variants = {"vmap_epoch_xla": (vmap, "epoch", True), "vmap_epoch": (vmap, "epoch", False),
                "vmap_step_xla": (vmap, "step", True), "vmap_step": (vmap, "step", False),
                "batched_epoch": (batched, "epoch", False)}
    # Not batched_epoch_xla: XLA compiles its K unrolled dropout draws per layer for
    # 10 s (K = 8) to 39 s (K = 32) here, and its epochs were no faster than vmap's.

    _sequential(x_np[:BATCH * 2], y_np[:BATCH * 2], 1, 2)  # Keras's first-fit costs, untimed
    baseline = _sequential(x_np, y_np, min(BASELINE_TRIALS, max(sizes)), epochs)
    results = {"sequential": baseline}
    print(f"  sequential: {baseline['seconds_per_trial']:.2f} s/trial "
          f"({baseline['cpu_seconds_per_trial']:.2f} CPU s), a later epoch "
          f"{baseline['seconds_per_later_epoch']:.3f} s", flush=True)
    # pfor with fallback_to_while_loop=False: an op it cannot vectorize is an error
    # (traced only: the same for every K, loop and jit_compile).
    results["vmap_strict"] = _variant(tf, strict, "epoch", True, min(sizes), x, y, orders,
                                      reference)
    error = results["vmap_strict"].get("error", "works")
    lines = [line.strip() for line in error.splitlines() if "pfor" in line] or [error[:200]]
    print(f"  vmap_strict: {lines[0]}", flush=True)
    ratios = {}
    for k in sizes:
        for name, (make_step, loop, jit) in variants.items():
            with _PforFallbacks() as fallbacks:
                result = _variant(tf, make_step, loop, jit, k, x, y, orders, reference)
            result["pfor_while_loop_fallbacks"] = sorted(fallbacks.ops)
            results[f"{name} K={k}"] = result
            if result["works"]:
                ratios[f"{name} K={k}: trials/hour"] = (
                    baseline["seconds_per_trial"] / result["seconds_per_trial"])
                ratios[f"{name} K={k}: trials/hour, CPU s"] = (
                    baseline["cpu_seconds_per_trial"] / result["cpu_seconds_per_trial"])
                ratios[f"{name} K={k}: a later epoch"] = (
                    baseline["seconds_per_later_epoch"] / (result["seconds_per_epoch"] / k))
            print(f"  {name} K={k}: " + (
                f"compile {result['compile_seconds']:.2f} s, "
                f"{result['seconds_per_epoch']:.3f} s/epoch, "
                f"rel. error {result['max_relative_error_vs_alone']:.1e}"
                if "compile_seconds" in result else result["error"][:200]), flush=True)
    results["ratios"] = ratios
    results["quick"] = quick
    return results
