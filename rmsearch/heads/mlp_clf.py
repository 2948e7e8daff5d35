"""`mlp_clf` head: see `MLPClassifierConfig` for what it is and its hyperparameters; training is in `_torch`."""

from rmsearch.heads._configs import MLPClassifierConfig
from rmsearch.heads._torch import TorchHead


class MLPClassifierHead(TorchHead):
    kind = "mlp_clf"
    Config = MLPClassifierConfig
    pointwise = True
