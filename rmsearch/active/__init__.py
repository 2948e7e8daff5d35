"""Active pair selection: which of your candidate pairs to send to annotators next, given what is labelled and
what a trained ensemble predicts (after Shen, Sun et al., "Active reward modeling").

    from rmsearch.active import choose_pairs
    idx = choose_pairs(X, a, b, k=100, rule="dopt", labelled=done, scores=member_scores, features=phi)

Rules live in the registry `RULES` (name -> `SelectionRule`, each with a one-line `description`); a new rule is a
`SelectionRule` subclass and one `register_rule` call. numpy only.
"""

from rmsearch.active._choose import choose_pairs
from rmsearch.active._rules import (
    RULES,
    Candidates,
    Coreset,
    Disagreement,
    DOptimal,
    RandomRule,
    SelectionRule,
    register_rule,
)

__all__ = [
    "RULES", "Candidates", "Coreset", "DOptimal", "Disagreement", "RandomRule", "SelectionRule", "choose_pairs",
    "register_rule",
]
