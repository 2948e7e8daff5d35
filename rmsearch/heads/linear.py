"""`linear` head: see `LinearConfig` for what it is and its hyperparameters; training is in `_torch`."""

from rmsearch.heads._configs import LinearConfig
from rmsearch.heads._torch import TorchHead


class LinearHead(TorchHead):
    kind = "linear"
    Config = LinearConfig
    pointwise = False
