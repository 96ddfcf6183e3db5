"""Which members of a vectorized group share one compiled program (its buckets).

One program pads every member to its largest width, depth and affine columns
per hidden layer (a maxout member of ``u`` units needs ``2u`` columns, its two
pieces; a member of another activation ``u``). Padding keeps each member exact
(masked units compute nothing it sees) but not free: on a CPU a member of width
64 padded to 256 does about 16 times its own matmul work. A maxout member of up
to half a program's columns rides along at no extra work (its pieces sit in the
two halves of the columns), a wider one doubles every member's columns; a
depth-1 member in a depth-2 program pays for a whole hidden layer it does not
have. A separate program per shape costs a compile instead (about 2 CPU-seconds
on the 2-core CPU). `plan` weighs the two with a cost model (the constants below,
fitted to measured epochs) and splits a group's members into buckets of
``(width, columns, depth, maxout)``:

    seconds(bucket) = compile (0 if a program of that shape is already compiled)
                      + its members (small wide programs priced higher) x each padded
                        member's estimated CPU-seconds per epoch x epochs

minimized three ways, the cheapest plan kept: starting from one bucket per
distinct member shape and merging, greedily, the pair whose merge saves the most
estimated seconds, until no merge saves any; and, exactly, over the plans that
cut the shapes into contiguous ranges, the shapes ordered by columns (then width,
depth) and by depth first (the greedy merge can stop early, and one order alone
misses cuts: the default digits search's batch-32 group splits by depth, which
no cut by columns reaches).
On an accelerator padding these small networks is taken as free (their steps
are bound by latency, not FLOPs), so the same rule merges everything into one
program; on the CPU it keeps wide and narrow, shallow and deep members
apart once the data is large enough to repay the extra compiles. The split
only changes speed, never a member's numbers (each member computes exactly its
own network in any bucket; `tests/tuning/buckets_test.py` checks a split
search against the sequential path).
"""

from __future__ import annotations

import dataclasses
import functools

from kerastrain.tuning import _members

# What one padded member costs per epoch on the CPU, in CPU-seconds (both cores' time:
# a search keeps both busy, so it ends when their work is done). Fitted to 16 group
# epochs on the project's 2-core CPU (JAX, 2026-12-04: 34 members of each of batch
# size 32/64/128 x width 64/128/256 x depth 1/2, the default space's program,
# digits), each within a third of the fit:
#   rows x (LAYER_SECONDS x depth + MAC_SECONDS x multiply-adds per example)
#   + steps x STEP_SECONDS x weights
# A hidden layer's elementwise work (activations, batch norm, dropout, masks) costs
# about as much as its matmuls at these widths, and the optimizer's update and the
# weight gradients are paid per step: a FLOP count alone (the model before) priced a
# width-256 depth-1 member in a program of its own at under half its measured cost
# (0.035 against 0.079 CPU-s over 10 digits epochs), saw less saved by splitting than a
# compile costs, and kept the default search's 16 depth-1 members of batch size 32 in
# the depth-2 program (whole search 12.8-13.6 s; split by depth: 12.1-12.2 s).
LAYER_SECONDS = 1.9e-6
MAC_SECONDS = 7.7e-11
STEP_SECONDS = 3.5e-9
# A program of 256 columns or more and fewer than SMALL_PROGRAM members runs each
# member's step at about half the efficiency (same machine, CPU-s per epoch: depth 2,
# width 256: 8 members 0.33, 12 members 0.47, 16 members 0.39, 20 members 0.48, 34
# members 0.80; depth 1, width 256: 8 members 0.147, 16 members 0.150; width 512, 4
# members 0.41, 8 members 0.54; not at width 64 or 128): it is priced as
# min(SMALL_PROGRAM, 2 x its members) members.
SMALL_PROGRAM = 16
# On a GPU / TPU a small MLP's step is bound by latency, not FLOPs: padding is taken as
# free, so every group stays one program (not measured: no accelerator was lent).
PADDING_IS_FREE = ("gpu", "tpu")
# What one more program costs a search, in CPU-seconds: its train, evaluate and
# keep-best programs trace, lower and compile in 1.6-2.3 CPU-s on the 2-core CPU
# (depth 1 to 2, the default space; measured 2026-12-04).
COMPILE_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Work:
    """What a bucket's cost depends on besides its shape."""

    train_rows: int  # training examples per member per epoch
    validation_rows: int  # validation examples per member per epoch
    epochs: int
    platform: str  # "cpu", "gpu", "tpu"
    limit: int  # the most members one program may hold
    last_round: bool = False  # no later group can reuse a program: pad no member


def padded_members(count, limit, last_round=False):
    """Members a program of ``count`` real members holds: a power of two up to 8, then a
    multiple of 8 (groups of similar sizes share a program; a group of 17 does not
    pay for 32), never more than ``limit`` nor fewer than ``count``. In the search's last
    round no later group can share the program: exactly ``count`` (no padded member)."""
    if last_round:
        return count
    size = 1 << (count - 1).bit_length() if count <= 8 else -(-count // 8) * 8
    return max(count, min(limit, size))


def member_key(spec):
    """The smallest ``(width, columns, depth, maxout)`` a program must have to hold
    ``spec``: a maxout member's two affine pieces per unit need twice its columns."""
    width = max(spec.units) if spec.units else 1
    maxout = spec.activation == "maxout"
    return (width, width * _members.MAXOUT_PIECES if maxout else width, spec.depth, maxout)


def plan(hypermodel, specs, batch_size, work, compiled=()):
    """Buckets of ``specs`` (indices into it) and each bucket's `GroupShape`.

    Args:
        hypermodel: the search's `MLPHyperModel`.
        specs: the group's members' `MemberSpec`s (same batch size, same epochs).
        batch_size: theirs.
        work: a `Work`.
        compiled: shapes whose programs exist already (no compile to pay).

    Returns:
        ``[(GroupShape, [index, ...]), ...]``, largest bucket first; every member in
        exactly one bucket, each bucket at most ``work.limit`` members.
    """
    by_key = {}
    for index, spec in enumerate(specs):
        by_key.setdefault(member_key(spec), []).append(index)
    buckets = [(key, members[start:start + work.limit])  # at most `limit` per program
               for key, members in by_key.items()
               for start in range(0, len(members), work.limit)]
    compiled = set(compiled)

    @functools.cache  # at most K distinct member keys: K^3 / 2 lookups, each shape built once
    def cost(key, count):
        return _seconds(_shape(hypermodel, batch_size, key, count, work), work, compiled)

    ranges = [_contiguous_plan(buckets, cost, work.limit, order) for order in _ORDERS]
    while len(buckets) > 1:
        best = None
        for i in range(len(buckets)):
            for j in range(i + 1, len(buckets)):
                (key_i, members_i), (key_j, members_j) = buckets[i], buckets[j]
                if len(members_i) + len(members_j) > work.limit:
                    continue
                key = _covering([key_i, key_j])
                saved = (cost(key_i, len(members_i)) + cost(key_j, len(members_j))
                         - cost(key, len(members_i) + len(members_j)))
                if saved > 0 and (best is None or saved > best[0]):
                    best = (saved, i, j, key)
        if best is None:
            break
        _, i, j, key = best
        merged = (key, sorted(buckets[i][1] + buckets[j][1]))
        buckets = [b for k, b in enumerate(buckets) if k not in (i, j)] + [merged]
    buckets = min([buckets, *ranges], key=lambda plan: _total(plan, cost))  # greedy on ties
    buckets.sort(key=lambda bucket: (-len(bucket[1]), bucket[1]))
    planned = []
    for key, members in buckets:
        shape = _shape(hypermodel, batch_size, key, len(members), work)
        if work.last_round and shape not in compiled:
            shape = narrowed(shape, [specs[i] for i in members])
        planned.append((shape, members))
    return planned


def _total(buckets, cost):
    return sum(cost(key, len(members)) for key, members in buckets)


# The orders `_contiguous_plan` cuts member keys ``(width, columns, depth, maxout)`` in:
# by columns (then width, depth), and by depth first (a depth-1 member padded to depth 2
# pays for a whole hidden layer it does not have).
_ORDERS = (lambda key: (key[1], key[0], key[2]), lambda key: (key[2], key[1], key[0]))


def _contiguous_plan(buckets, cost, limit, order):
    """The cheapest cut of ``buckets`` (one per member key, at most ``limit`` members),
    ordered by ``order`` of their keys, into contiguous ranges of at most ``limit``
    members, each range one bucket (its covering key): dynamic programming over the cut
    points."""
    ordered = sorted(buckets, key=lambda bucket: order(bucket[0]))
    best = [(0.0, [])]  # best[i]: (seconds, plan) of the first i buckets
    for end in range(1, len(ordered) + 1):
        options = []
        for start in range(end):
            members = sorted(i for _, bucket in ordered[start:end] for i in bucket)
            if len(members) > limit:
                continue
            key = _covering([key for key, _ in ordered[start:end]])
            seconds, plan = best[start]
            options.append((seconds + cost(key, len(members)), plan + [(key, members)]))
        best.append(min(options, key=lambda option: option[0]))
    return best[-1][1]


def narrowed(shape, specs):
    """``shape`` computing only what ``specs`` use: their activations, optimizer families
    and schedules, batch normalization and dropout only if one of them uses it.

    A program computes every activation (family, schedule) of its shape for every
    member and selects each member's own; a program the search's last round compiles
    is reused by no later group, so it need not cover the rest of the space. (A
    bucket of two maxout members compiles in about half the time; the members'
    numbers do not change: each selects its own branch either way.)
    """
    from kerastrain.tuning._members import optimizer_settings

    activations = {spec.activation for spec in specs}
    families = {optimizer_settings(spec.optimizer)[0] for spec in specs}
    schedules = {spec.schedule for spec in specs}
    return dataclasses.replace(
        shape, activations=tuple(a for a in shape.activations if a in activations),
        families=tuple(f for f in shape.families if f in families),
        schedules=tuple(s for s in shape.schedules if s in schedules),
        batch_norm=shape.batch_norm and any(spec.batch_norm for spec in specs),
        dropout=shape.dropout and any(spec.dropout > 0 for spec in specs))


def _covering(keys):
    widths, columns, depths, maxouts = zip(*keys)
    maxout = None if len(set(maxouts)) > 1 else maxouts[0]
    return (max(widths), max(columns), max(depths), maxout)


def _shape(hypermodel, batch_size, key, count, work):
    width, columns, depth, maxout = key
    members = padded_members(count, work.limit, work.last_round)
    shape = _members.group_shape(hypermodel, batch_size, members, maxout=maxout)
    return dataclasses.replace(shape, width=width, columns=columns, depth=depth)


def flops_per_example(shape):
    """Matmul FLOPs of one padded member on one training example (forward and backward:
    3 matmuls of 2 FLOPs per multiply-add)."""
    macs = (shape.input_dim * shape.columns + (shape.depth - 1) * shape.width * shape.columns
            + shape.width * shape.outputs)
    return 6 * macs


def member_epoch_seconds(shape, work):
    """CPU-seconds one padded member of ``shape`` costs per epoch (the model above)."""
    weights = flops_per_example(shape) // 6  # one multiply-add per weight and example
    rows = work.train_rows + work.validation_rows / 3  # evaluation: the forward pass only
    steps = -(-work.train_rows // shape.batch_size)
    return (rows * (LAYER_SECONDS * shape.depth + MAC_SECONDS * weights)
            + steps * STEP_SECONDS * weights)


def _seconds(shape, work, compiled):
    compute = 0.0
    if work.platform not in PADDING_IS_FREE:
        members = shape.members
        if shape.columns >= 256:
            members = max(members, min(SMALL_PROGRAM, 2 * members))
        compute = members * member_epoch_seconds(shape, work) * work.epochs
    return compute + (0.0 if shape in compiled else COMPILE_SECONDS)
