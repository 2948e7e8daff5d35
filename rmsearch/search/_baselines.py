"""Fixed recipes every launch compares its choice with on the test split: the seed paper's recipe and the
simplest strong model, a linear Bradley-Terry head. Their members go through the head cache like any other, so
each is trained once per study (and not at all where a trial already trained the same members)."""

from __future__ import annotations

from rmsearch.ensembles import EnsembleConfig


def seed_paper() -> EnsembleConfig:
    """The built-in `seed-paper` space's one point: 10 MLPs D→1024→512→1, early stopping, raw scores averaged."""
    from rmsearch.spaces import load_space

    return EnsembleConfig.from_point(load_space("seed-paper").fixed_point())


def linear() -> EnsembleConfig:
    """The `default` space's linear starting point: one L2-penalized logistic regression on embedding differences,
    fitted exactly (lbfgs, C = 1, raw features) — scikit-learn's `LogisticRegression()` on chosen − rejected. A
    launch from the default space already has this member."""
    from rmsearch.spaces import load_space

    return EnsembleConfig.from_point(next(p for p in load_space("default").starts if p["head"] == "linear"))


BASELINES = {"seed-paper": seed_paper, "linear": linear}
"""Name -> the configuration it trains (`--baselines`)."""
