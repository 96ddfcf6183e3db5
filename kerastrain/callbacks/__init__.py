"""kerastrain.callbacks: early stopping, plateau reduction, "watch every layer" to TensorBoard.

Every callback writes through `kerastrain.tensorboard.SummaryWriter` (no
TensorFlow needed) in Keras's ``train/`` / ``validation/`` layout, and puts
its scalars into ``logs`` so `History` and `CSVLogger` see them.
"""

from kerastrain.callbacks._activations import ActivationHistograms
from kerastrain.callbacks._dead_relu import DeadReLUDetector
from kerastrain.callbacks._early_stopping import EarlyStopping
from kerastrain.callbacks._gradient_norms import GradientNormLogger
from kerastrain.callbacks._monitor import monitor
from kerastrain.callbacks._plateau import ReduceLROnPlateau
from kerastrain.callbacks._stopping_rules import StoppingReason
from kerastrain.callbacks._weights import LearningRateLogger, UpdateRatioLogger, WeightHistograms

__all__ = [
    "ActivationHistograms",
    "DeadReLUDetector",
    "EarlyStopping",
    "GradientNormLogger",
    "LearningRateLogger",
    "ReduceLROnPlateau",
    "StoppingReason",
    "UpdateRatioLogger",
    "WeightHistograms",
    "monitor",
]
