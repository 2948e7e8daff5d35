"""Verdicts with an effect size and a 95% interval over seeds: what every finding of the grid studies
(`beyond-bt`, `data-scaling`, `coste`, `active`) states.

A finding is a claim about the sign of an effect, e.g. "classifier − Bradley-Terry BoN gold > 0". Each seed is one
independent replicate of the whole experiment (its own world where the data is the built-in one, its own label
draws, splits and member seeds), so the effect is computed on each seed's numbers alone and the interval is
Student's t over those per-seed effects: mean ± t(0.975, n−1)·sd/√n. The verdict reads the interval:

- **holds**: the interval lies on the claimed side of the threshold (0 unless the claim says otherwise);
- **contradicted**: it lies on the other side;
- **inconclusive**: it straddles the threshold (the seeds cannot tell).

With one seed there is no interval and the verdict is "not enough seeds".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
MIN_SEEDS = 2
"""Fewer seeds give no interval, hence no verdict."""


def seed_interval(values) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-seed values and its 95% Student-t interval (nan bounds for one value)."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < MIN_SEEDS:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Verdict:
    """One finding decided from per-seed effects."""

    key: str
    claim: str
    """What the literature says, as a sentence."""
    effect: str
    """What is measured, e.g. 'mlp_clf − mlp, BoN gold at N = M'."""
    values: tuple[float, ...]
    """The effect on each seed's numbers alone."""
    direction: int = 1
    """+1: the claim is effect > threshold; −1: effect < threshold."""
    threshold: float = 0.0
    scope: str = "all"
    note: str = ""
    """How the effect is computed, or what it rests on (shown after the numbers)."""

    @property
    def interval(self) -> tuple[float, float, float]:
        return seed_interval(self.values)

    @property
    def seeds(self) -> int:
        return int(np.isfinite(np.asarray(self.values, np.float64)).sum())

    @property
    def verdict(self) -> str:
        mean, lo, hi = self.interval
        if not np.isfinite(mean):
            return "not tested"
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return "not enough seeds"
        lo, hi = lo - self.threshold, hi - self.threshold
        if self.direction * lo > 0 and self.direction * hi > 0:
            return "holds"
        if self.direction * lo < 0 and self.direction * hi < 0:
            return "contradicted"
        return "inconclusive"

    @property
    def holds_in(self) -> int:
        """Seeds whose own effect is on the claimed side."""
        v = np.asarray(self.values, np.float64)
        return int((self.direction * (v[np.isfinite(v)] - self.threshold) > 0).sum())

    def numbers(self) -> str:
        """'+0.123 [+0.045, +0.201] over 5 seeds (on the claimed side in 5)'."""
        mean, lo, hi = self.interval
        if not np.isfinite(lo):
            return f"{mean:+.3f} (one seed: no interval)"
        return (f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}] over {self.seeds} seeds (on the claimed side in "
                f"{self.holds_in})")

    def line(self) -> str:
        scope = "" if self.scope == "all" else f" [{self.scope}]"
        side = ">" if self.direction > 0 else "<"
        note = f" {self.note}" if self.note else ""
        return (f"- ({self.key}){scope} {self.claim}: **{self.verdict}**. {self.effect} {side} "
                f"{self.threshold:g}: {self.numbers()}.{note}")

    def as_dict(self) -> dict:
        mean, lo, hi = self.interval
        return {"key": self.key, "scope": self.scope, "claim": self.claim, "effect": self.effect,
                "direction": self.direction, "threshold": self.threshold, "verdict": self.verdict,
                "mean": mean, "low": lo, "high": hi, "seeds": self.seeds, "holds_in": self.holds_in,
                "values": list(self.values), "note": self.note}


def verdict_rows(verdicts: list[Verdict]) -> str:
    """A Markdown table: finding, scope, effect, mean [95% interval], seeds on the claimed side, verdict."""
    lines = ["| finding | scope | effect | mean [95% interval] | seeds on its side | verdict |", "|---" * 6 + "|"]
    for v in verdicts:
        mean, lo, hi = v.interval
        interval = f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else f"{mean:+.3f}"
        lines.append(f"| ({v.key}) | {v.scope} | {v.effect} | {interval} | {v.holds_in} of {v.seeds} | "
                     f"{v.verdict} |")
    return "\n".join(lines)
