"""`rmsearch reproduce seed-ensembles`: the quick run end to end, and the findings decided from hand-made tables."""

import argparse
import csv
import re
import subprocess
import sys

import numpy as np
import pytest

from rmsearch.errors import RMSearchError
from rmsearch.reproduce import add_reproduce_parser, cmd_reproduce, findings

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ray_module():
    """A local Ray for this module, unless the session already has one (then it is left running)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


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


def test_quick_end_to_end(tmp_path, ray_module):
    out = tmp_path / "study"
    assert cmd_reproduce(_args(out, quick=True)) == 0
    md = (out / "report.md").read_text()
    assert "| head | label flips | label error | aggregation | BoN gold @ N=M |" in md
    assert "## Findings of the literature" in md
    lines = [l for l in md.splitlines() if re.match(r"- \([abc]\) ", l)]
    assert len(lines) == 3
    for line in lines:
        assert re.search(r"\*\*(reproduced|not reproduced)\*\*", line), line
        assert re.search(r"\d\.\d{3}", line), line  # the numbers behind the verdict
    for head in ("mlp", "mlp_clf", "gbdt", "linear"):
        assert f"| {head} | 40% |" in md
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["bon_flip05.png", "bon_flip40.png", "summary.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
        assert f"]({p.name})" in md
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 2 * (1 + 3)  # heads × noise levels × (single + mean, min, uwo)
    assert {r["aggregation"] for r in rows} == {"single", "mean", "min", "uwo"}
    for r in rows:
        assert np.isfinite(float(r["gold_final"])) and float(r["drop"]) >= 0
        assert float(r["gold_peak"]) >= float(r["gold_final"]) - 1e-12
    errors = {r["flip_rate"]: float(r["label_error"]) for r in rows}
    assert errors["0.05"] < 0.15 < 0.3 < errors["0.4"]  # realized label error follows the flip rate
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


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


def test_findings_count_seeds_where_the_criterion_holds():
    base = {"mlp": {0.05: 1.0, 0.40: 0.5}, "mlp_clf": {0.05: 1.0, 0.40: 0.8}}
    per_seed = []
    for seed, single in ((0, -0.2), (1, -0.1), (2, 0.5)):  # ensembles beat single in seeds 0 and 1 only
        per_seed += [{**r, "seed": seed} for r in table(base, lambda a, r, s=single: s if a == "single" else 0.0)]
    mean_rows = table(base, lambda a, r: 0.2 / 3 if a == "single" else 0.0)  # the seeds' mean: single above
    a = findings(mean_rows, per_seed)[0]
    assert a.reproduced is False
    assert a.evidence.endswith("Per seed, the criterion holds in 2 of 3.")
    assert "Per seed" not in findings(mean_rows, [r for r in per_seed if r["seed"] == 0])[0].evidence
