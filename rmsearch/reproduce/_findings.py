"""Which findings of the literature a table of results reproduces, decided from the numbers, with their spread
over seeds.

A table is a list of rows {"head", "flip_rate", "aggregation" ("single", "mean", "min", "uwo"), "gold_final"}
(gold_final = BoN gold at N = pool size, averaged over seeds). Each finding has a statistic, a criterion on it,
an outcome on the mean over seeds (True: holds, False: does not, None: the table cannot test it) and a sentence
with the numbers behind it. Given the per-seed rows too, the statistic is also computed on each seed's numbers
alone: the sentence gives its mean ± std over seeds and in how many seeds the criterion holds, and the verdict
weighs both (`Finding.verdict`).

(a) Ensembles beat single heads (Coste et al. 2023): every ensemble aggregation's gold at N=M, averaged over
    noise levels (and heads), is above the single head's. Statistic: aggregation − single, per aggregation.
(b) Conservative aggregation reduces over-optimization most under high label noise (Coste et al. 2023): the gain
    of min/uwo over mean (gold at N=M, averaged over min and uwo, and over heads) is positive at the highest noise
    level and larger there than at the lowest. Statistic: the gain at the lowest and at the highest noise level.
(c) Classifier heads are more robust to label noise than Bradley-Terry heads (Sun et al. 2025): mlp_clf loses
    less gold at N=M than mlp from the lowest to the highest noise level (averaged over single and ensemble rows).
    Statistic: the loss of each of the two heads.

(a) and (b) are decided over all heads and for each head type on its own; (c) compares two head types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_SEEDS = 3
"""Fewer seeds than this give no verdict in what `rmsearch reproduce` prints and reports: "not enough seeds"
(one or two worlds and a handful of prompts decide a mean by chance)."""
CONSERVATIVE = ("min", "uwo")
ENSEMBLES = ("mean", "min", "uwo")


@dataclass(frozen=True, eq=False)
class Finding:
    key: str
    claim: str
    reproduced: bool | None
    """The criterion on the mean over seeds (None: the table cannot test it)."""
    evidence: str
    holds: int | None = None
    """Seeds in which the criterion holds on that seed's numbers alone (None without per-seed rows)."""
    seeds: int = 1
    scope: str = "all heads"
    stats: dict = field(default_factory=dict)
    """The statistic(s) behind the criterion: mean over seeds."""
    spread: dict = field(default_factory=dict)
    """Their standard deviation over seeds (empty with one seed)."""
    intervals: dict = field(default_factory=dict)
    """Their 95% Student-t interval over seeds, (low, high) (empty with one seed)."""
    per_head: tuple = ()
    """The same finding decided for each head type on its own."""
    min_seeds: int = 0
    """Below this many seeds the verdict is "not enough seeds"."""

    @property
    def verdict(self) -> str:
        """'reproduced' where the criterion holds on the mean over seeds and in most seeds, 'not reproduced' where
        it fails on the mean and in most seeds, 'mixed' where the mean and the seeds disagree (or the seeds split
        evenly), 'not tested' where the table cannot test it."""
        if self.reproduced is None:
            return "not tested"
        if self.seeds < self.min_seeds:
            return "not enough seeds"
        if self.holds is None or self.seeds < 2:
            return "reproduced" if self.reproduced else "not reproduced"
        if self.reproduced and 2 * self.holds > self.seeds:
            return "reproduced"
        if not self.reproduced and 2 * self.holds < self.seeds:
            return "not reproduced"
        return "mixed"

    @property
    def count(self) -> str:
        """'holds in k of n seeds', or '' with one seed."""
        return "" if self.holds is None else f"holds in {self.holds} of {self.seeds} seeds"

    def line(self) -> str:
        count = f" ({self.count})" if self.count else ""
        return f"- ({self.key}) {self.claim}: **{self.verdict}**{count}. {self.evidence}"


def _index(rows: list[dict]) -> dict:
    return {(r["head"], float(r["flip_rate"]), r["aggregation"]): float(r["gold_final"]) for r in rows}


def _restrict(table: dict, heads) -> dict:
    return table if heads is None else {k: v for k, v in table.items() if k[0] in heads}


def _mean(table: dict, heads=None, rates=None, aggs=None) -> float:
    vals = [v for (h, r, a), v in table.items()
            if (heads is None or h in heads) and (rates is None or r in rates) and (aggs is None or a in aggs)]
    return float(np.mean(vals)) if vals else float("nan")


def _pct(rate: float) -> str:
    return f"{rate:.0%}"


def _pm(stats: dict, spread: dict, key: str, sign: bool = True, intervals: dict | None = None) -> str:
    """'+0.254 ± 0.018' (mean ± std over seeds), with its 95% interval over seeds where given."""
    v = f"{stats[key]:+.3f}" if sign else f"{stats[key]:.3f}"
    v = f"{v} ± {spread[key]:.3f}" if key in spread else v
    if intervals and key in intervals:
        lo, hi = intervals[key]
        v += f", 95% [{lo:+.3f}, {hi:+.3f}]"
    return v


# Each check: (table) -> (ok or None, stats) and a formatter (table, stats, spread) -> evidence sentence.


def _ensembles_stats(table: dict):
    aggs = [a for a in ENSEMBLES if any(k[2] == a for k in table)]
    if not aggs or not any(k[2] == "single" for k in table):
        return None, {}
    single = _mean(table, aggs=("single",))
    stats = {a: _mean(table, aggs=(a,)) - single for a in aggs}
    return all(d > 0 for d in stats.values()), stats


def _ensembles_text(table: dict, stats: dict, spread: dict) -> str:
    single = _mean(table, aggs=("single",))
    parts = ", ".join(f"{a} {single + d:.3f} ({_pm(stats, spread, a)})" for a, d in stats.items())
    losers = [a for a, d in stats.items() if d <= 0]
    tail = f" Not above single: {', '.join(losers)}." if losers else ""
    over = "noise levels" if len({k[0] for k in table}) == 1 else "heads and noise levels"
    return f"BoN gold at N=M averaged over {over}: single {single:.3f}; {parts}.{tail}"


def _conservative_stats(table: dict):
    rates = sorted({k[1] for k in table})
    aggs = [a for a in CONSERVATIVE if any(k[2] == a for k in table)]
    if len(rates) < 2 or not aggs or not any(k[2] == "mean" for k in table):
        return None, {}

    def gain(rate):
        heads = sorted({k[0] for k in table if k[1] == rate})
        return float(np.mean([_mean(table, (h,), (rate,), aggs) - _mean(table, (h,), (rate,), ("mean",))
                              for h in heads]))

    lo, hi = gain(rates[0]), gain(rates[-1])
    return hi > 0 and hi > lo, {"lowest noise": lo, "highest noise": hi}


def _conservative_text(table: dict, stats: dict, spread: dict) -> str:
    rates = sorted({k[1] for k in table})
    aggs = [a for a in CONSERVATIVE if any(k[2] == a for k in table)]
    lo, hi = stats["lowest noise"], stats["highest noise"]
    why = "" if hi > 0 and hi > lo else (" The gain at the highest noise is not positive." if hi <= 0 else
                                         " The gain is not larger at the highest noise than at the lowest.")
    over = "" if len({k[0] for k in table}) == 1 else ", averaged over heads"
    return (f"Gain of {'/'.join(aggs)} over mean in BoN gold at N=M{over}: {_pm(stats, spread, 'lowest noise')} at "
            f"{_pct(rates[0])} label flips, {_pm(stats, spread, 'highest noise')} at {_pct(rates[-1])}.{why}")


def _classifier_stats(table: dict):
    rates = sorted({k[1] for k in table})
    if len(rates) < 2 or not {"mlp", "mlp_clf"} <= {k[0] for k in table}:
        return None, {}
    lo, hi = rates[0], rates[-1]
    loss = {h: _mean(table, (h,), (lo,)) - _mean(table, (h,), (hi,)) for h in ("mlp_clf", "mlp")}
    return loss["mlp_clf"] < loss["mlp"], loss


def _classifier_text(table: dict, stats: dict, spread: dict) -> str:
    rates = sorted({k[1] for k in table})
    lo, hi = rates[0], rates[-1]
    parts = ", ".join(f"{h} {_pm(stats, spread, h)} ({_mean(table, (h,), (lo,)):.3f} → {_mean(table, (h,), (hi,)):.3f})"
                      for h in ("mlp_clf", "mlp"))
    return (f"Loss in BoN gold at N=M from {_pct(lo)} to {_pct(hi)} label flips (averaged over single and ensemble "
            f"rows): {parts}.")


CHECKS = {
    "a": ("Ensembles beat single heads", _ensembles_stats, _ensembles_text, True),
    "b": ("Conservative aggregation (min/uwo) reduces over-optimization most under high label noise",
          _conservative_stats, _conservative_text, True),
    "c": ("Classifier heads (mlp_clf) are more robust to label noise than Bradley-Terry heads (mlp)",
          _classifier_stats, _classifier_text, False),
}
"""key -> (claim, statistic, sentence, decided per head type too)."""

UNTESTABLE = {
    "a": "The table lacks single-head or ensemble rows.",
    "b": "Needs at least two noise levels and mean plus min or uwo rows.",
    "c": "Needs mlp and mlp_clf rows at two or more noise levels.",
}


def _decide(key: str, table: dict, seed_tables: list[dict], heads=None, min_seeds: int = 0) -> Finding:
    claim, stats_of, text_of, _ = CHECKS[key]
    table = _restrict(table, heads)
    scope = "mlp_clf vs mlp" if key == "c" else "all heads" if heads is None else ", ".join(heads)
    ok, stats = stats_of(table)
    if ok is None:
        return Finding(key, claim, None, UNTESTABLE[key], scope=scope)
    spread, holds, intervals = {}, None, {}
    if len(seed_tables) > 1:
        from rmsearch.reproduce._verdicts import seed_interval

        per = [stats_of(_restrict(t, heads)) for t in seed_tables]
        holds = sum(bool(p[0]) for p in per)
        spread = {k: float(np.std([p[1][k] for p in per], ddof=1)) for k in stats}
        intervals = {k: seed_interval([p[1][k] for p in per])[1:] for k in stats}
    evidence = text_of(table, stats, spread)
    if spread:
        evidence += (f" Mean over {len(seed_tables)} seeds ± std; on its own the criterion holds in {holds} of them. "
                     f"95% intervals over seeds (Student's t): "
                     + "; ".join(f"{STAT_LABELS[key].format(k)} [{lo:+.3f}, {hi:+.3f}]"
                                 for k, (lo, hi) in intervals.items()) + ".")
    return Finding(key, claim, ok, evidence, holds=holds, seeds=max(1, len(seed_tables)), scope=scope,
                   stats=stats, spread=spread, intervals=intervals, min_seeds=min_seeds)


def findings(rows: list[dict], per_seed: list[dict] | None = None, min_seeds: int = 0) -> list[Finding]:
    """The three findings, decided from `rows` (see the module docstring). With `per_seed` (the same rows with a
    "seed" key, one per seed), each also gets the spread of its statistic over seeds and the number of seeds in
    which its criterion holds; (a) and (b) get a sub-finding per head type (`Finding.per_head`). With fewer than
    `min_seeds` seeds, each verdict is "not enough seeds"."""
    from rmsearch.reproduce._study import SEED_HEADS

    rows = [r for r in rows if r["head"] in SEED_HEADS]  # the literature's claims are about the seed's head types
    per_seed = [r for r in per_seed or [] if r["head"] in SEED_HEADS]
    table = _index(rows)
    seeds = sorted({r["seed"] for r in per_seed or []})
    seed_tables = [_index([r for r in per_seed if r["seed"] == s]) for s in seeds] if len(seeds) > 1 else []
    heads = sorted({k[0] for k in table}, key=lambda h: [r["head"] for r in rows].index(h))
    out = []
    for key, (_, _, _, per_head) in CHECKS.items():
        f = _decide(key, table, seed_tables, min_seeds=min_seeds)
        if per_head and f.reproduced is not None and len(heads) > 1:
            subs = tuple(_decide(key, table, seed_tables, (h,), min_seeds) for h in heads)
            f = Finding(f.key, f.claim, f.reproduced, f.evidence, f.holds, f.seeds, f.scope, f.stats, f.spread,
                        f.intervals, subs, min_seeds)
        out.append(f)
    return out


STAT_LABELS = {"a": "{} − single", "b": "min/uwo − mean at {}", "c": "{} loss"}


def verdict_table(found: list[Finding]) -> str:
    """Markdown: one row per finding and scope (all heads, then each head type) with its statistic (mean ± std
    over seeds), the number of seeds where it holds and the verdict."""
    lines = ["| finding | heads | statistic (mean ± std over seeds, 95% interval) | holds in | verdict |",
             "|---|---|---|---|---|"]
    for f in found:
        for g in (f, *f.per_head):
            if g.reproduced is None:
                lines.append(f"| ({f.key}) | {g.scope} | – | – | not tested |")
                continue
            stat = "; ".join(f"{STAT_LABELS[f.key].format(k)} {_pm(g.stats, g.spread, k, intervals=g.intervals)}"
                             for k in g.stats)
            holds = f"{g.holds} of {g.seeds}" if g.holds is not None else "–"
            lines.append(f"| ({f.key}) | {g.scope} | {stat} | {holds} | {g.verdict} |")
    return "\n".join(lines)
