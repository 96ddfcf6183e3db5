"""Which members of a vectorized group share one compiled program (its buckets).

One program pads every member to its largest width, depth and affine columns
per hidden layer (a maxout member of ``u`` units needs ``2u`` columns, its two
pieces; a member of another activation ``u``). Padding keeps each member exact
(masked units compute nothing it sees) but not free: on a CPU a member of width
64 padded to 256 does about 16 times its own matmul work. A maxout member of up
to half a program's columns rides along at no extra work (its pieces sit in the
two halves of the columns), a wider one doubles every member's columns. A
separate program per shape costs a compile instead (about 1.5 s on the 2-core
CPU, whatever the shape). `plan` weighs the two with a cost model and splits a
group's members into buckets of ``(width, columns, depth, maxout)``:

    seconds(bucket) = compile (0 if a program of that shape is already compiled)
                      + matmul FLOPs of its padded members over its epochs / throughput

minimized two ways, the cheaper plan kept: starting from one bucket per distinct
member shape and merging, greedily, the pair whose merge saves the most estimated
seconds, until no merge saves any; and, exactly, over the plans that cut the
shapes, ordered by columns, width and depth, into contiguous ranges (the greedy
merge can stop early: on the default digits search it kept one program where a
cut at 128 columns is about 13% cheaper, and measured so).
On an accelerator padding these small networks is taken as free (their steps
are bound by latency, not FLOPs), so the same rule merges everything into one
program; on the CPU it keeps wide and narrow members
apart once the data is large enough to repay the extra compiles. The split
only changes speed, never a member's numbers (each member computes exactly its
own network in any bucket; `tests/tuning/buckets_test.py` checks a split
search against the sequential path).
"""

from __future__ import annotations

import dataclasses
import functools

from kerastrain.tuning import _members

# Throughputs (float32 FLOP/s) of the padded matmul work: on the project's 2-core CPU
# a 32-member group of width 256 (digits, batch 32) ran 0.51 s/epoch = 37 GFLOP/s and
# of width 64, 41 GFLOP/s (`bench/tuning`'s calibration, this module's docstring).
THROUGHPUT = {"cpu": 4e10}
# On a GPU / TPU a small MLP's step is bound by latency, not FLOPs: padding is taken as
# free, so every group stays one program (not measured: no accelerator was lent).
ACCELERATOR_THROUGHPUT = float("inf")
# What one more program costs a search: its train, evaluate and keep-best programs compile
# in ~1.6 s alone on the 2-core CPU but take ~2.5 CPU-seconds (lowering, LLVM), and a
# search keeps both cores busy. Calibrated on the default digits search (64 trials x 10
# epochs, JAX, 2026-12-04): the exact plan at 1.5 s cut its batch-32 group at 128 columns
# (5 programs, 0.9 s cheaper in the model) and ran 16.5-16.7 s against 15.4-15.6 s for
# 3 programs; at 2.5 s the model keeps the 3 (its epochs alone: 9.1 s against 10.4-10.8 s,
# so the cut pays once a search runs longer than about twice this one).
COMPILE_SECONDS = 2.5


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

    ranges = _contiguous_plan(buckets, cost, work.limit)
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
    if _total(ranges, cost) < _total(buckets, cost):
        buckets = ranges
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


def _contiguous_plan(buckets, cost, limit):
    """The cheapest cut of ``buckets`` (one per member key, at most ``limit`` members),
    ordered by their keys, into contiguous ranges of at most ``limit`` members, each
    range one bucket (its covering key): dynamic programming over the cut points."""
    ordered = sorted(buckets, key=lambda bucket: (bucket[0][1], bucket[0][0], bucket[0][2]))
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


def _seconds(shape, work, compiled):
    throughput = THROUGHPUT.get(work.platform, ACCELERATOR_THROUGHPUT)
    rows = work.train_rows + work.validation_rows / 3  # evaluation: the forward pass only
    compute = shape.members * flops_per_example(shape) * rows * work.epochs / throughput
    return compute + (0.0 if shape in compiled else COMPILE_SECONDS)
