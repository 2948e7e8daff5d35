"""The length-only baseline: prefer the longer answer. Judges and annotators favour longer answers, so on
text-derived data a reward model's numbers mean little without this rule's beside them.

Its score for a row is log(1 + the response's length in characters): the ranking of the rule "longer wins"
(equal lengths tie), on a scale where pair NLL and calibration stay finite.
"""

from __future__ import annotations

import numpy as np

LENGTH_NAME = "baseline length"
LENGTH_RULE = "prefer the longer answer: score = log(1 + response length in characters); no training"


def length_scores(split) -> np.ndarray | None:
    """The rule's score of every row of `split`, or None where the split carries no response lengths."""
    if split.lengths is None:
        return None
    return np.log1p(np.asarray(split.lengths, np.float64))
