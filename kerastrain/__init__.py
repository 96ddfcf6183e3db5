"""kerastrain: the network-optimization-and-regularization chapter as a Keras 3 toolkit."""

__version__ = "0.1.0"
