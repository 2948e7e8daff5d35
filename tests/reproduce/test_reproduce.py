"""`rmsearch reproduce seed-ensembles`: the quick run end to end, and the findings decided from hand-made tables."""

import argparse
import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from rmsearch.errors import RMSearchError
from rmsearch.reproduce import StudyConfig, add_reproduce_parser, cmd_reproduce, findings
from rmsearch.reproduce._findings import verdict_table
from rmsearch.reproduce._study import world_per_seed

PNG = b"\x89PNG\r\n\x1a\n"


def _args(out, **kw):
    parser = argparse.ArgumentParser()
    add_reproduce_parser(parser.add_subparsers(dest="command"))
    argv = ["reproduce", "seed-ensembles", "--out", str(out), "--no-progress"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] if v is True else [f"--{k.replace('_', '-')}", str(v)]
    return parser.parse_args(argv)


def test_parser_wires_cmd_reproduce(tmp_path):
    args = _args(tmp_path / "r", quick=True, seeds=2, workers=1, address="127.0.0.1:6379")
    assert args.func is cmd_reproduce
    assert (args.study, args.quick, args.seeds, args.workers, args.address, args.data) == (
        "seed-ensembles", True, 2, 1, "127.0.0.1:6379", None)


def test_quick_end_to_end(tmp_path, ray_module, capsys):
    out = tmp_path / "study"
    assert cmd_reproduce(_args(out, quick=True, seeds=2)) == 0
    shown = capsys.readouterr().out
    assert "quick mode: a tiny world" in shown and "the numbers mean little" in shown
    assert re.search(r"^\(a\) .+: not enough seeds \(holds in [012] of 2 seeds\)$", shown, re.M), shown
    assert "not enough seeds: a verdict needs at least 3 seeds (this run has 2)" in shown
    assert not re.search(r": (reproduced|not reproduced|mixed)\b", shown), shown
    md = (out / "report.md").read_text()
    assert "| head | label flips | label error | aggregation | BoN gold @ N=M |" in md
    assert "## Findings of the literature" in md
    lines = [l for l in md.splitlines() if re.match(r"- \([abc]\) ", l)]
    assert len(lines) == 3
    for line in lines:
        # 2 seeds: below the 3 a verdict needs, so none is given
        assert re.search(r"\*\*not enough seeds\*\* \(holds in [012] of 2 seeds\)", line), line
        assert re.search(r"\d\.\d{3} ± \d\.\d{3}", line), line  # the numbers behind the verdict, with their spread
    # (a) and (b) are decided for each head type too: one row per head in the verdict table
    for key in ("a", "b"):
        for head in ("all heads", "mlp", "mlp_clf", "gbdt", "linear"):
            assert re.search(rf"\| \({key}\) \| {head} \| .+ \| [012] of 2 \| not enough seeds \|",
                             md), (key, head)
    for head in ("mlp", "mlp_clf", "gbdt", "linear", "laplace"):
        assert f"| {head} | 40% |" in md
    assert "| laplace | 40% | " in md and "single by lower bound (κ=1) |" in md and "lcb (κ=1, with posterior) |" in md
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["bon_flip05.png", "bon_flip40.png", "summary.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
        assert f"]({p.name})" in md
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # the seed's heads × noise levels × (single + mean, min, uwo), and laplace's also by its lower bound
    assert len(rows) == 4 * 2 * (1 + 3) + 2 * (1 + 3 + 2)
    assert {r["aggregation"] for r in rows} == {"single", "mean", "min", "uwo", "single lcb", "lcb"}
    assert {r["aggregation"] for r in rows if r["head"] != "laplace"} == {"single", "mean", "min", "uwo"}
    for r in rows:
        assert np.isfinite(float(r["gold_final"])) and float(r["drop"]) >= 0
        assert float(r["gold_peak"]) >= float(r["gold_final"]) - 1e-12
        assert r["seeds"] == "2" and float(r["gold_final_std"]) >= 0
    errors = {r["flip_rate"]: float(r["label_error"]) for r in rows}
    assert errors["0.05"] < 0.15 < 0.3 < errors["0.4"]  # realized label error follows the flip rate
    blob = json.loads((out / "results.json").read_text())
    # each seed drew its own world: two fingerprints, and the report says so
    worlds = blob["data"]["worlds"]
    assert blob["data"]["world_per_seed"] and [w["seed"] for w in worlds] == [0, 1]
    assert len({w["fingerprint"] for w in worlds}) == 2
    assert "each draw a built-in world" in md and worlds[1]["fingerprint"] in md
    # the summary row is the mean and the std over the two seeds' own numbers
    per_seed = [r for r in blob["per_seed"] if (r["head"], r["flip_rate"], r["aggregation"]) == ("mlp", 0.4, "uwo")]
    row = next(r for r in blob["rows"] if (r["head"], r["flip_rate"], r["aggregation"]) == ("mlp", 0.4, "uwo"))
    vals = [r["gold_final"] for r in sorted(per_seed, key=lambda r: r["seed"])]
    assert len(vals) == 2 and vals[0] != vals[1]
    assert row["gold_final"] == pytest.approx(np.mean(vals)) and row["gold_final_std"] == pytest.approx(np.std(vals, ddof=1))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_world_per_seed_only_for_synth_without_a_seed(tmp_path):
    assert world_per_seed("synth") and world_per_seed("synth:dim=8,test_prompts=20")
    assert not world_per_seed("synth:seed=3") and not world_per_seed("synth:dim=8,seed=0")
    assert not world_per_seed(str(tmp_path)) and not world_per_seed(f"{tmp_path}::gen_emb_task")
    assert StudyConfig.make().seeds == 5 and StudyConfig.make(quick=True).seeds == 1
    assert StudyConfig.make(data="synth:seed=2").world_per_seed is False


def test_refuses_pair_data(tmp_path):
    from rmsearch.data import write_pair_folder

    rng = np.random.default_rng(0)
    write_pair_folder(tmp_path / "pairs", rng.standard_normal((50, 4)).astype(np.float32),
                      rng.standard_normal((50, 4)).astype(np.float32), {"name": "toy"})
    with pytest.raises(RMSearchError, match="gold"):
        cmd_reproduce(_args(tmp_path / "out", data=tmp_path / "pairs", quick=True))
    assert not (tmp_path / "out").exists()
    proc = subprocess.run([sys.executable, "-m", "rmsearch.reproduce", "seed-ensembles", "--data",
                           str(tmp_path / "pairs"), "--out", str(tmp_path / "out"), "--quick"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "best-of-N" in proc.stderr


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RMSearchError, match="not a reproduce report folder"):
        cmd_reproduce(_args(tmp_path / "mine", quick=True))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# --- the findings, as a pure function of the table ------------------------------------------------------------


def table(base: dict, offset) -> list[dict]:
    """rows with gold_final = base[head][rate] + offset(agg, rate)."""
    return [{"head": h, "flip_rate": r, "aggregation": a, "gold_final": g + offset(a, r)}
            for h, by_rate in base.items() for r, g in by_rate.items() for a in ("single", "mean", "min", "uwo")]


def verdicts(rows):
    return {f.key: f.reproduced for f in findings(rows)}


def test_findings_all_reproduced():
    base = {"mlp": {0.05: 1.0, 0.40: 0.5}, "mlp_clf": {0.05: 1.0, 0.40: 0.8}, "gbdt": {0.05: 0.9, 0.40: 0.6}}

    def offset(agg, rate):
        return {"single": -0.2, "mean": 0.0}.get(agg, 0.1 if rate == 0.40 else 0.0)

    found = findings(table(base, offset))
    assert [f.reproduced for f in found] == [True, True, True]
    a, b, c = (f.line() for f in found)
    assert "**reproduced**" in a and "single 0.600; mean 0.800 (+0.200), min 0.850 (+0.250)" in a
    assert "+0.000 at 5% label flips, +0.100 at 40%" in b
    # mlp: lo mean over aggs 1.0 - 0.05 = 0.95, hi 0.5 + 0 = 0.5 -> loss 0.45; mlp_clf 0.95 -> 0.8: 0.15
    assert "mlp_clf +0.150 (0.950 → 0.800), mlp +0.450 (0.950 → 0.500)" in c


def test_findings_none_reproduced():
    base = {"mlp": {0.05: 1.0, 0.15: 0.9, 0.40: 0.8}, "mlp_clf": {0.05: 1.0, 0.15: 0.8, 0.40: 0.4}}

    def offset(agg, rate):
        return {"single": 0.3, "mean": 0.0}.get(agg, -0.1 if rate == 0.40 else 0.1)

    found = findings(table(base, offset))
    assert [f.verdict for f in found] == ["not reproduced"] * 3
    assert "Not above single: mean, min, uwo" in found[0].evidence
    assert "+0.100 at 5% label flips, -0.100 at 40%" in found[1].evidence
    assert "not positive" in found[1].evidence


def test_findings_partial_and_untestable():
    # mean beats single but min does not -> (a) not reproduced; conservative gain positive but larger at low noise
    base = {"mlp": {0.05: 1.0, 0.40: 0.6}, "gbdt": {0.05: 1.0, 0.40: 0.6}}
    gains = {("min", 0.05): -0.5, ("uwo", 0.05): 0.9, ("min", 0.40): 0.0, ("uwo", 0.40): 0.2}

    def offset(agg, rate):
        return {"single": 0.0, "mean": 0.1}[agg] if agg in ("single", "mean") else 0.1 + gains[(agg, rate)]

    v = verdicts(table(base, offset))
    assert v["a"] is False and v["b"] is False
    assert "Not above single: min" in findings(table(base, offset))[0].evidence
    assert "not larger at the highest noise" in findings(table(base, offset))[1].evidence
    assert v["c"] is None  # no mlp_clf rows: the table cannot test it
    one_level = table({"mlp": {0.25: 1.0}, "mlp_clf": {0.25: 1.0}}, lambda a, r: 0.1 * (a != "single"))
    v = verdicts(one_level)
    assert v == {"a": True, "b": None, "c": None}
    assert "not tested" in findings(one_level)[1].line()


def _per_seed(base, singles):
    """Per-seed rows: in seed i the single head sits at singles[i] (per head, or one number for all heads) relative
    to the ensembles."""
    out = []
    for seed, single in enumerate(singles):
        out += [{**r, "seed": seed} for r in
                table(base, lambda a, r, s=single: 0.0 if a != "single" else s)]
    return out


def _mean_rows(base, per_seed):
    keys = ("head", "flip_rate", "aggregation")
    groups = {}
    for r in per_seed:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r["gold_final"])
    return [{**dict(zip(keys, k)), "gold_final": float(np.mean(v))} for k, v in groups.items()]


def test_findings_count_seeds_and_spread():
    base = {"mlp": {0.05: 1.0, 0.40: 0.5}, "mlp_clf": {0.05: 1.0, 0.40: 0.8}}
    per_seed = _per_seed(base, (-0.2, -0.1, 0.5))  # ensembles beat single in seeds 0 and 1 only
    a = findings(_mean_rows(base, per_seed), per_seed)[0]
    diffs = np.array([0.2, 0.1, -0.5])  # ensemble − single per seed
    assert a.reproduced is False  # on the mean over seeds, single is above
    assert (a.holds, a.seeds, a.count) == (2, 3, "holds in 2 of 3 seeds")
    assert a.verdict == "mixed"  # fails on the mean, holds in most seeds
    assert a.stats["uwo"] == pytest.approx(diffs.mean()) and a.spread["uwo"] == pytest.approx(diffs.std(ddof=1))
    assert f"uwo 0.825 ({diffs.mean():+.3f} ± {diffs.std(ddof=1):.3f})" in a.evidence
    assert "on its own the criterion holds in 2 of them." in a.evidence
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)  # Student's t over the 3 seeds
    lo, hi = diffs.mean() - half, diffs.mean() + half
    assert a.evidence.endswith(f"95% intervals over seeds (Student's t): mean − single [{lo:+.3f}, {hi:+.3f}]; "
                               f"min − single [{lo:+.3f}, {hi:+.3f}]; uwo − single [{lo:+.3f}, {hi:+.3f}].")
    assert a.intervals["uwo"] == pytest.approx((lo, hi))
    assert "**mixed** (holds in 2 of 3 seeds)" in a.line()
    # one seed: no spread, no count, and the verdict is the criterion itself
    one = findings(_mean_rows(base, per_seed[:16]), per_seed[:16])[0]
    assert (one.holds, one.spread, one.count, one.verdict) == (None, {}, "", "reproduced")
    assert "±" not in one.evidence


def test_verdict_weighs_mean_and_seeds():
    base = {"mlp": {0.05: 1.0, 0.40: 0.5}, "gbdt": {0.05: 1.0, 0.40: 0.5}}
    # holds on the mean (one seed far below) but in only 1 of 3 seeds -> mixed
    per_seed = _per_seed(base, (-0.9, 0.05, 0.05))
    assert findings(_mean_rows(base, per_seed), per_seed)[0].verdict == "mixed"
    per_seed = _per_seed(base, (-0.3, -0.1, 0.05))  # mean holds, 2 of 3 seeds -> reproduced
    f = findings(_mean_rows(base, per_seed), per_seed)[0]
    assert (f.verdict, f.holds) == ("reproduced", 2)
    per_seed = _per_seed(base, (0.3, 0.1, -0.05))  # mean fails, 1 of 3 seeds -> not reproduced
    f = findings(_mean_rows(base, per_seed), per_seed)[0]
    assert (f.verdict, f.holds) == ("not reproduced", 1)


def test_findings_per_head_type():
    base = {"mlp": {0.05: 1.0, 0.40: 0.5}, "gbdt": {0.05: 1.0, 0.40: 0.5}}
    per_seed = []
    for seed, (mlp_single, gbdt_single) in enumerate(((-0.3, 0.1), (-0.2, 0.05), (-0.25, -0.02))):
        for r in table(base, lambda a, r: 0.0):
            if r["aggregation"] == "single":
                r["gold_final"] += mlp_single if r["head"] == "mlp" else gbdt_single
            per_seed.append({**r, "seed": seed})
    found = findings(_mean_rows(base, per_seed), per_seed)
    a, b, c = found
    assert a.verdict == "reproduced" and a.holds == 3  # over both heads the ensembles win in every seed
    by_head = {g.scope: g for g in a.per_head}
    assert set(by_head) == {"mlp", "gbdt"}
    assert (by_head["mlp"].verdict, by_head["mlp"].holds) == ("reproduced", 3)
    assert (by_head["gbdt"].verdict, by_head["gbdt"].holds) == ("not reproduced", 1)
    gbdt = np.array([-0.1, -0.05, 0.02])
    assert by_head["gbdt"].stats["mean"] == pytest.approx(gbdt.mean())
    assert by_head["gbdt"].spread["mean"] == pytest.approx(gbdt.std(ddof=1))
    assert c.reproduced is None and c.per_head == ()  # no mlp_clf rows
    md = verdict_table(found)
    assert re.search(r"\| \(a\) \| gbdt \| mean − single -0\.043 ± 0\.060, 95% \[-0\.193, \+0\.106\]; .+ \| 1 of 3 \| "
                     r"not reproduced \|", md), md
    assert "| (a) | mlp |" in md and "| (c) | mlp_clf vs mlp | – | – | not tested |" in md
    assert len(b.per_head) == 2  # (b) is decided per head too
