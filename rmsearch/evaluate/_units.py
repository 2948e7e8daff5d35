"""Per-unit values: one number per prompt (gold pools) or per pair (labelled pairs) whose mean is a metric.

Search objectives reduce them robustly (trimmed means, lower confidence bounds) and comparisons between two
ensembles bootstrap their paired differences, so both rest on the same definitions.
"""

from __future__ import annotations

import numpy as np

from rmsearch.errors import ConfigError
from rmsearch.evaluate._bon import _tie_averaged_sorted, bon_weights, log_grid
from rmsearch.evaluate._metrics import per_prompt_spearman

UNITS = ("bon_final", "bon_auc", "spearman", "pair_correct", "pair_nll")


def unit_values(scores: np.ndarray, split, unit: str) -> np.ndarray:
    """Per-prompt or per-pair values of `unit` for aggregated `scores` (len(split),) on a task split.

    bon_final     gold of the proxy's favourite among all M candidates of each prompt (BoN at N = M; proxy
                  ties share it)
    bon_auc       each prompt's exact BoN gold averaged over a log-spaced grid of N from 1 to M: the area under
                  the BoN curve against log N, so a ranking is judged on all selection pressures, not at N = M
    spearman      Spearman correlation of proxy and gold over each prompt's candidates (0 where either is flat)
    pair_correct  1 when the pair is ordered as labelled, 0 when not, 0.5 on a score tie
    pair_nll      Bradley-Terry negative log-likelihood of the label
    """
    s = np.asarray(scores, np.float64)
    if unit in ("bon_final", "bon_auc", "spearman"):
        if split.gold is None:
            raise ConfigError(f"{unit} needs gold rewards; this split has labelled pairs only.")
        if unit == "spearman":
            return per_prompt_spearman(s.reshape(split.gold.shape), np.asarray(split.gold, np.float64))
        if unit == "bon_final":
            return prompt_curves(s, split, [split.gold.shape[1]])[:, 0]
        return prompt_curves(s, split, log_grid(split.gold.shape[1])).mean(1)
    if unit in ("pair_correct", "pair_nll"):
        p = split.pairs
        margin = (s[p.a] - s[p.b]) * (2.0 * np.asarray(p.y, np.float64) - 1.0)
        if unit == "pair_nll":
            return np.logaddexp(0.0, -margin)
        return np.where(margin == 0, 0.5, (margin > 0).astype(np.float64))
    raise ConfigError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}.")


def unit_groups(split, unit: str) -> np.ndarray | None:
    """What `paired_bootstrap` should resample for `unit_values(..., unit)` on `split`: None where each value is
    already one unit (a prompt's BoN or Spearman, or a pair of pair data without prompts), else the prompt of
    each pair (`Split.unit_of_pair`), so a prompt's pairs are drawn together."""
    if unit in ("pair_correct", "pair_nll") and (split.gold is not None or split.groups is not None):
        return split.unit_of_pair
    return None


def prompt_curves(scores: np.ndarray, split, ns) -> np.ndarray:
    """(prompts, len(ns)) exact BoN gold of each prompt at each N of `ns`: the per-prompt terms whose mean over
    prompts is the BoN curve (`bon_curve`'s gold)."""
    if split.gold is None:
        raise ConfigError("BoN curves need gold rewards; this split has labelled pairs only.")
    gold = np.asarray(split.gold, np.float64)
    ranked = _tie_averaged_sorted(np.asarray(scores, np.float64).reshape(gold.shape), gold)
    return ranked @ bon_weights(gold.shape[1], ns).T


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, draws: int = 2000, level: float = 0.95,
                     seed: int = 0, groups: np.ndarray | None = None) -> dict:
    """Mean of a − b over paired units (the same prompts or pairs), with a percentile bootstrap interval.

    `groups` (one id 0..G-1 per entry) makes the resampled units the groups, e.g. the prompts that labelled pairs
    answer: a group's entries are drawn together and the mean is a ratio of sums, so correlated entries of one
    prompt do not count as independent evidence. Returns {"diff", "low", "high", "n" (units resampled),
    "level"}; `low > 0` means a beats b at that level.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ConfigError(f"paired_bootstrap: a {a.shape} and b {b.shape} must be the same non-empty 1-d units.")
    d = a - b
    if groups is None:
        sums, counts = d, np.ones(len(d))
    else:
        sums = np.bincount(groups, weights=d)
        counts = np.bincount(groups, minlength=len(sums)).astype(np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(draws)
    for start in range(0, draws, 256):  # bounded memory for large splits
        idx = rng.integers(0, len(sums), (min(256, draws - start), len(sums)))
        means[start : start + len(idx)] = sums[idx].sum(1) / counts[idx].sum(1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"diff": float(d.mean()), "low": float(low), "high": float(high), "n": int(len(sums)), "level": level}
