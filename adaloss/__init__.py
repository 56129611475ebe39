"""adaloss: online loss-function learning (AdaLFL) as a drop-in optimizer wrapper."""

from adaloss.anchored import AnchoredAdam
from adaloss.losses import (
    LossNetwork,
    ML3Network,
    MonotoneLossNetwork,
    SmoothLeakyReLU,
    TaylorLoss,
)
from adaloss.metalr import MetaLROptimizer
from adaloss.online import StepResult
from adaloss.optimizer import MetaLossOptimizer
from adaloss.tasks import BinaryClassification, Classification, Regression, Task

__all__ = [
    "AnchoredAdam",
    "BinaryClassification",
    "Classification",
    "LossNetwork",
    "ML3Network",
    "MetaLROptimizer",
    "MetaLossOptimizer",
    "MonotoneLossNetwork",
    "Regression",
    "SmoothLeakyReLU",
    "StepResult",
    "Task",
    "TaylorLoss",
]
__version__ = "0.1.0"
