"""PyTorch implementations of the backend primitives."""

import contextlib

import torch

NAME = "torch"


def compile_function(function):
    """Eager: `torch.compile` of arbitrary Keras code is not reliable enough here."""
    return function


def _leaves(values):
    return [torch.as_tensor(value).detach().requires_grad_(True) for value in values]


def _zeros_for_none(grads, values):
    return [torch.zeros_like(v) if g is None else g for g, v in zip(grads, values)]


def value_and_grad(loss_fn):
    """``loss_fn(values, *args) -> loss`` to ``(values, *args) -> (loss, grads)``."""

    def wrapped(values, *args):
        with torch.enable_grad():
            leaves = _leaves(values)
            loss = loss_fn(leaves, *args)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        return loss.detach(), _zeros_for_none(grads, leaves)

    return wrapped


def hvp(loss_fn):
    """``(values, vectors, *args) -> H @ vectors`` by double backward."""

    def wrapped(values, vectors, *args):
        with torch.enable_grad():
            leaves = _leaves(values)
            loss = loss_fn(leaves, *args)
            grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
            grads = _zeros_for_none(grads, leaves)
            dot = sum(
                (g * torch.as_tensor(v, dtype=g.dtype, device=g.device)).sum()
                for g, v in zip(grads, vectors)
            )
            if not dot.requires_grad:  # a loss linear in every weight
                return [torch.zeros_like(leaf) for leaf in leaves]
            result = torch.autograd.grad(dot, leaves, allow_unused=True)
        return [r.detach() for r in _zeros_for_none(result, leaves)]

    return wrapped


def float64_mode():
    """PyTorch always supports float64: nothing to change."""
    return contextlib.nullcontext()


# Gradient statistics (kerastrain/_backend/_statistics.py). PyTorch runs eagerly
# and updates in place: Python branches, and a clone only when recording.

RECORD_BEFORE_UPDATE = False


def squared_norm(value):
    """Σx²."""
    return torch.sum(torch.square(value))


def snapshot(variables, record):
    """A clone of each variable on recording steps; None otherwise."""
    if bool(record):
        from keras import ops

        return [ops.copy(v) for v in variables]
    return [None] * len(variables)


def assign_where(record, targets, compute):
    if bool(record):
        for variable, value in zip(targets, compute()):
            variable.assign(value)


def concrete_bool(value):
    return bool(value)
