"""Which findings of the literature a table of results reproduces, decided from the numbers.

A table is a list of rows {"head", "flip_rate", "aggregation" ("single", "mean", "min", "uwo"), "gold_final"}
(gold_final = BoN gold at N = pool size, averaged over seeds). Each finding gets an outcome (True: reproduced,
False: not reproduced, None: the table cannot test it) and a sentence with the numbers behind it.

(a) Ensembles beat single heads (Coste et al. 2023): every ensemble aggregation's gold at N=M, averaged over
    heads and noise levels, is above the single head's.
(b) Conservative aggregation reduces over-optimization most under high label noise (Coste et al. 2023): the gain
    of min/uwo over mean (gold at N=M, averaged over heads and over min and uwo) is positive at the highest noise
    level and larger there than at the lowest.
(c) Classifier heads are more robust to label noise than Bradley-Terry heads (Sun et al. 2025): mlp_clf loses
    less gold at N=M than mlp from the lowest to the highest noise level (averaged over single and ensemble rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONSERVATIVE = ("min", "uwo")
ENSEMBLES = ("mean", "min", "uwo")


@dataclass(frozen=True)
class Finding:
    key: str
    claim: str
    reproduced: bool | None
    evidence: str

    @property
    def verdict(self) -> str:
        return {True: "reproduced", False: "not reproduced", None: "not tested"}[self.reproduced]

    def line(self) -> str:
        return f"- ({self.key}) {self.claim}: **{self.verdict}**. {self.evidence}"


def _index(rows: list[dict]) -> dict:
    return {(r["head"], float(r["flip_rate"]), r["aggregation"]): float(r["gold_final"]) for r in rows}


def _mean(table: dict, heads=None, rates=None, aggs=None) -> float:
    vals = [v for (h, r, a), v in table.items()
            if (heads is None or h in heads) and (rates is None or r in rates) and (aggs is None or a in aggs)]
    return float(np.mean(vals)) if vals else float("nan")


def _pct(rate: float) -> str:
    return f"{rate:.0%}"


def ensembles_beat_single(table: dict) -> Finding:
    claim = "Ensembles beat single heads"
    aggs = [a for a in ENSEMBLES if any(k[2] == a for k in table)]
    if not aggs or not any(k[2] == "single" for k in table):
        return Finding("a", claim, None, "The table lacks single-head or ensemble rows.")
    single = _mean(table, aggs=("single",))
    diffs = {a: _mean(table, aggs=(a,)) - single for a in aggs}
    ok = all(d > 0 for d in diffs.values())
    parts = ", ".join(f"{a} {single + d:.3f} ({d:+.3f})" for a, d in diffs.items())
    losers = [a for a, d in diffs.items() if d <= 0]
    tail = "" if ok else f" Not above single: {', '.join(losers)}."
    return Finding("a", claim, ok, f"BoN gold at N=M averaged over heads and noise levels: single {single:.3f}; "
                                   f"{parts}.{tail}")


def conservative_under_noise(table: dict) -> Finding:
    claim = "Conservative aggregation (min/uwo) reduces over-optimization most under high label noise"
    rates = sorted({k[1] for k in table})
    aggs = [a for a in CONSERVATIVE if any(k[2] == a for k in table)]
    if len(rates) < 2 or not aggs or not any(k[2] == "mean" for k in table):
        return Finding("b", claim, None, "Needs at least two noise levels and mean plus min or uwo rows.")
    lo, hi = rates[0], rates[-1]

    def gain(rate):
        heads = sorted({k[0] for k in table if k[1] == rate})
        per_head = [_mean(table, (h,), (rate,), aggs) - _mean(table, (h,), (rate,), ("mean",)) for h in heads]
        return float(np.mean(per_head))

    g_lo, g_hi = gain(lo), gain(hi)
    ok = g_hi > 0 and g_hi > g_lo
    why = "" if ok else (" The gain at the highest noise is not positive." if g_hi <= 0 else
                         " The gain is not larger at the highest noise than at the lowest.")
    return Finding("b", claim, ok, f"Gain of {'/'.join(aggs)} over mean in BoN gold at N=M, averaged over heads: "
                                   f"{g_lo:+.3f} at {_pct(lo)} label flips, {g_hi:+.3f} at {_pct(hi)}.{why}")


def classifier_robust(table: dict) -> Finding:
    claim = "Classifier heads (mlp_clf) are more robust to label noise than Bradley-Terry heads (mlp)"
    rates = sorted({k[1] for k in table})
    heads = {k[0] for k in table}
    if len(rates) < 2 or not {"mlp", "mlp_clf"} <= heads:
        return Finding("c", claim, None, "Needs mlp and mlp_clf rows at two or more noise levels.")
    lo, hi = rates[0], rates[-1]
    loss = {h: _mean(table, (h,), (lo,)) - _mean(table, (h,), (hi,)) for h in ("mlp", "mlp_clf")}
    ok = loss["mlp_clf"] < loss["mlp"]
    return Finding("c", claim, ok, f"Loss in BoN gold at N=M from {_pct(lo)} to {_pct(hi)} label flips (averaged over "
                                   f"single and ensemble rows): mlp_clf {loss['mlp_clf']:+.3f} "
                                   f"({_mean(table, ('mlp_clf',), (lo,)):.3f} → {_mean(table, ('mlp_clf',), (hi,)):.3f}), "
                                   f"mlp {loss['mlp']:+.3f} "
                                   f"({_mean(table, ('mlp',), (lo,)):.3f} → {_mean(table, ('mlp',), (hi,)):.3f}).")


CHECKS = (ensembles_beat_single, conservative_under_noise, classifier_robust)


def findings(rows: list[dict], per_seed: list[dict] | None = None) -> list[Finding]:
    """The three findings, decided from `rows` (see the module docstring). With `per_seed` (the same rows with a
    "seed" key, one per seed), each evidence also says in how many seeds the same criterion holds on its own."""
    table = _index(rows)
    out = [check(table) for check in CHECKS]
    seeds = sorted({r["seed"] for r in per_seed or []})
    if len(seeds) > 1:
        tables = [_index([r for r in per_seed if r["seed"] == s]) for s in seeds]
        for i, (check, f) in enumerate(zip(CHECKS, out)):
            if f.reproduced is None:
                continue
            holds = sum(bool(check(t).reproduced) for t in tables)
            out[i] = Finding(f.key, f.claim, f.reproduced,
                             f"{f.evidence} Per seed, the criterion holds in {holds} of {len(seeds)}.")
    return out
