"""Fixed recipes every launch compares its choice with on the test split: the seed paper's recipe and the
simplest strong model, a linear Bradley-Terry head. Their members go through the head cache like any other, so
each is trained once per study (and not at all where a trial already trained the same members)."""

from __future__ import annotations

from rmsearch.ensembles import Aggregation, EnsembleConfig
from rmsearch.heads._configs import LinearConfig


def seed_paper() -> EnsembleConfig:
    """The built-in `seed-paper` space's one point: 10 MLPs D→1024→512→1, early stopping, raw scores averaged."""
    from rmsearch.spaces import load_space

    return EnsembleConfig.from_point(load_space("seed-paper").fixed_point())


def linear() -> EnsembleConfig:
    """One linear Bradley-Terry head (logistic regression on embedding differences, light weight decay); the
    `default` space's linear starting point, so a launch from it already has this member."""
    return EnsembleConfig(head=LinearConfig(weight_decay=1e-4, epochs=40), members=1, aggregation=Aggregation("mean"),
                          standardize=True)


BASELINES = {"seed-paper": seed_paper, "linear": linear}
"""Name -> the configuration it trains (`--baselines`)."""
