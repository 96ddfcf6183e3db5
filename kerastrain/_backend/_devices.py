"""The devices the backend computes on, as `keras.distribution.list_devices()` names them."""

from __future__ import annotations

import keras


def list_devices():
    """``["cpu:0"]``, ``["cuda:0", "cuda:1"]``, ...: the backend's default device type.

    Keras answers for TensorFlow and JAX; its PyTorch backend has no distribution
    library (`keras.distribution.list_devices()` raises AttributeError there), so the
    devices come from torch itself, named the same way: CUDA devices when there are
    any, else Apple's MPS, else the CPU.
    """
    if keras.config.backend() != "torch":
        return keras.distribution.list_devices()
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        return ["mps:0"]
    return ["cpu:0"]
