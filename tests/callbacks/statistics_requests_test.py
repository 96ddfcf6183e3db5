"""Recording schedules requested by statistics callbacks: held by the optimizer."""

from collections.abc import MutableMapping, MutableSequence, MutableSet

import keras

from kerastrain import optimizers
from kerastrain.callbacks import _statistics


def _schedule(optimizer):
    return optimizer._statistics_schedule


def test_requests_combine_and_release_per_optimizer():
    first, second = optimizers.SGD(0.1, statistics_every=7), optimizers.SGD(0.1)
    owner_a, owner_b = object(), object()
    _statistics.request_statistics(first, owner_a, 4, 3)
    _statistics.request_statistics(first, owner_b, 6, 3)
    assert _schedule(first) == (2, 1)  # gcd 2; offsets 3 and 3 agree modulo 2
    assert _schedule(second) == (20, 0)  # another optimizer is not affected
    _statistics.release_statistics(first, owner_a)
    assert _schedule(first) == (6, 3)
    _statistics.release_statistics(first, owner_b)
    assert _schedule(first) == (7, 0)  # the optimizer's own schedule back
    _statistics.release_statistics(first, owner_b)  # releasing twice is harmless
    assert _schedule(first) == (7, 0)


def test_requests_live_on_the_optimizer_not_in_the_module():
    optimizer = optimizers.monitored(keras.optimizers.SGD())
    owner = object()
    _statistics.request_statistics(optimizer, owner, 5, 0)
    assert list(vars(optimizer)[_statistics._REQUESTS_ATTRIBUTE].values()) == [(5, 0)]
    module_containers = [name for name, value in vars(_statistics).items()
                         if isinstance(value, (MutableMapping, MutableSequence, MutableSet)) and not name.startswith("__")]
    assert module_containers == []
    _statistics.release_statistics(optimizer, owner)
    assert vars(optimizer)[_statistics._REQUESTS_ATTRIBUTE] == {}
