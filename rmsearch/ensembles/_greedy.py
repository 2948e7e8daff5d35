"""Greedy ensemble selection (Caruana et al. 2004): forward selection with replacement from a library of
trained members, judged on cached validation scores only (nothing is re-scored or retrained)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from rmsearch.ensembles._aggregate import Aggregation


def greedy_select(library: np.ndarray, objective: Callable[[np.ndarray], float], size: int,
                  aggregation: Aggregation = Aggregation(), patience: int = 3) -> tuple[list[int], list[float]]:
    """Pick up to `size` members (repeats allowed) from `library` (L, n) standardized validation scores,
    each step adding the member whose inclusion gives the highest `objective(aggregated scores)`.

    Returns the chosen indices (in order of selection) and the objective after each step. Stops early after
    `patience` steps without improvement and returns the best prefix, so a larger `size` never hurts.
    """
    chosen: list[int] = []
    trace: list[float] = []
    best_value, best_len, since = -np.inf, 0, 0
    total = np.zeros(library.shape[1])  # the mean is a running sum: a step costs one objective per member
    for _ in range(size):
        if aggregation.name == "mean":
            values = [objective((total + library[j]) / (len(chosen) + 1)) for j in range(len(library))]
        else:
            values = [objective(aggregation(library[chosen + [j]])) for j in range(len(library))]
        j = int(np.argmax(values))
        chosen.append(j)
        total += library[j]
        trace.append(float(values[j]))
        if values[j] > best_value + 1e-12:
            best_value, best_len, since = values[j], len(chosen), 0
        else:
            since += 1
            if since >= patience:
                break
    return chosen[:best_len], trace[:best_len]
