"""Why gradient statistics cost a step on JAX even when not recorded: bare `jax.jit`.

Keras's JAX trainer donates the training state to its compiled step, so XLA
updates the weights in place. This benchmark times a plain SGD update of the
1.05M parameters of `bench.optimizers` (w ← w − 0.01 g, state donated, as
Keras does), and the same update with a `lax.cond` whose branch is never taken
but reads, respectively:

- ``gradients``: only the gradients (what the gradient norms need);
- ``new_weights``: only the weights after the update;
- ``old_weights``: the weights from before the update (what ‖Δw‖ and ‖w‖
  need in general: kerastrain's recording on JAX);
- ``update``: the update u, with the old weights as w_new + u (the other way);
- ``first_unordered``: the branch runs the update itself on the old weights
  and reads only them (and the gradients), with nothing ordering it before
  the real update;
- ``first``: the same, the real update made to wait for the branch (it adds
  a −0.0 computed from the branch's output to the gradients): what
  kerastrain's optimizers do on JAX.

Ratios are over the plain update (1.0: free). Reading the old weights after
the update (or materialising u) stops the in-place update; on CPU that costs
about a weight copy per step whether or not the branch runs. Reading them in a
branch that the update waits for does not. Needs JAX (``pip install -e
".[jax]"``); the Keras backend does not matter.
"""

from __future__ import annotations

import numpy as np

from bench._harness import interleaved

SHAPES = [(512, 1024), (1024,), (1024, 512), (512,), (512, 10), (10,)]


def _variants(jax, jnp):
    def squared(x):
        return jnp.sum(jnp.square(x))

    def never(iterations):
        return iterations % 1_000_000_000 == 0  # false after the first call

    def plain(weights, stats, iterations, grads):
        return [w - 0.01 * g for w, g in zip(weights, grads)], stats, iterations + 1

    def gradients(weights, stats, iterations, grads):
        new = [w - 0.01 * g for w, g in zip(weights, grads)]
        stats = jax.lax.cond(never(iterations),
                             lambda: jnp.stack([squared(g) for g in grads]), lambda: stats)
        return new, stats, iterations + 1

    def new_weights(weights, stats, iterations, grads):
        new = [w - 0.01 * g for w, g in zip(weights, grads)]
        stats = jax.lax.cond(never(iterations),
                             lambda: jnp.stack([squared(w) for w in new]), lambda: stats)
        return new, stats, iterations + 1

    def old_weights(weights, stats, iterations, grads):
        new = [w - 0.01 * g for w, g in zip(weights, grads)]
        stats = jax.lax.cond(
            never(iterations),
            lambda: jnp.stack([squared(n - w) + squared(w) for n, w in zip(new, weights)]),
            lambda: stats)
        return new, stats, iterations + 1

    def update(weights, stats, iterations, grads):
        updates = [0.01 * g for g in grads]
        new = [w - u for w, u in zip(weights, updates)]
        stats = jax.lax.cond(
            never(iterations),
            lambda: jnp.stack([squared(u) + squared(n + u) for n, u in zip(new, updates)]),
            lambda: stats)
        return new, stats, iterations + 1

    def recorded_first(weights, grads):
        def recorded():
            return jnp.stack([squared(g) + squared((w - 0.01 * g) - w) + squared(w)
                              for w, g in zip(weights, grads)])
        return recorded

    def first_unordered(weights, stats, iterations, grads):
        stats = jax.lax.cond(never(iterations), recorded_first(weights, grads), lambda: stats)
        return [w - 0.01 * g for w, g in zip(weights, grads)], stats, iterations + 1

    def first(weights, stats, iterations, grads):
        stats = jax.lax.cond(never(iterations), recorded_first(weights, grads), lambda: stats)
        ordering = jnp.where(stats[0] < 0, 0.0, -0.0)  # −0.0 in practice; not foldable
        return ([w - 0.01 * (g + ordering) for w, g in zip(weights, grads)], stats,
                iterations + 1)

    functions = {"plain": plain, "gradients": gradients, "new_weights": new_weights,
                 "old_weights": old_weights, "update": update,
                 "first_unordered": first_unordered, "first": first}
    return {label: jax.jit(function, donate_argnums=(0, 1))
            for label, function in functions.items()}


def run(quick=False):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as error:  # pragma: no cover - depends on the install
        raise SystemExit(f"bench xla_inplace needs JAX: pip install -e \".[jax]\" ({error})") from error
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=shape).astype("float32")) for shape in SHAPES]
    functions = _variants(jax, jnp)
    states = {}
    for label in functions:
        weights = [jnp.asarray(rng.normal(size=shape).astype("float32")) for shape in SHAPES]
        states[label] = (weights, jnp.zeros((len(SHAPES),), jnp.float32), jnp.int32(1))

    def stepper(label):
        def step():
            states[label] = functions[label](*states[label], grads)
            jax.block_until_ready(states[label])
        return step

    repeat, number = (3, 20) if quick else (9, 100)
    timing = interleaved({label: stepper(label) for label in functions},
                         repeat=repeat, warmup=2, number=number)
    return {
        "ratios": {f"{label} / plain update": timing[label] / timing["plain"]
                   for label in functions if label != "plain"},
        "seconds_per_step": timing,
        "parameters": int(sum(np.prod(shape) for shape in SHAPES)),
        "quick": quick,
        "device": str(jax.devices()[0]),
    }
