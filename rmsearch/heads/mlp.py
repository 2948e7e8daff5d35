"""`mlp` head: see `MLPConfig` for what it is and its hyperparameters; training is in `_torch`."""

from rmsearch.heads._configs import MLPConfig
from rmsearch.heads._torch import TorchHead


class MLPHead(TorchHead):
    kind = "mlp"
    Config = MLPConfig
    pointwise = False
