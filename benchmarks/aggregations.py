"""Single head against every aggregation, over world seeds: the numbers behind README's "What `rmsearch evaluate`
shows".

    .venv/bin/python benchmarks/aggregations.py                          # seeds 0-4, about 30 s on 2 idle cores
    .venv/bin/python benchmarks/aggregations.py --seeds 0 1 2 3 4 5 6 7 --figure docs/evaluate-default-bon.png

For each seed s it does what `rmsearch evaluate --data synth --seed s` does with its default configuration
(`DEFAULT_POINT`: 8 bootstrapped 64-32 MLPs, 40 epochs, annotator quality 2.0): seed s draws the built-in world,
the prompt splits and the annotator's labels; the members are trained once and evaluated alone ("single", averaged
over members) and under every aggregation (mean, min, median, uwo λ=1, lcb κ=1) on the test split (pools of 500).
It prints, in Markdown:

1. one row per aggregation with each metric's mean ± std over seeds (BoN gold at N=M, peak gold, peak N, drop =
   peak − final, gain over N=1, per-prompt Spearman, pairwise accuracy on held-out gold-labelled pairs);
2. the claims README makes, each with its statistic (mean ± std over seeds) and the number of seeds where it
   holds on that seed's numbers alone;
3. the per-seed numbers the claims rest on.

`--figure PATH` also draws the BoN gold and proxy curves against KL averaged over seeds (bands: ±1 std over seeds
of the single head's and uwo's gold).
`--json PATH` writes every seed's metrics and curves. `--save` keeps the printed tables (and the numbers behind
them) in benchmarks/results/aggregations.json, which `python benchmarks/readme.py` writes into README.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

AGGREGATIONS = (("mean", None), ("min", None), ("median", None), ("uwo", 1.0), ("lcb", 1.0))
COLUMNS = (("gold_final", "BoN gold @ N=M"), ("gold_peak", "peak gold"), ("peak_n", "peak N"), ("drop", "drop"),
           ("gain", "gain over N=1"), ("spearman", "Spearman"), ("pair_accuracy", "pair acc."))
DROP = 0.1
"""A drop (peak − final BoN gold) above this counts as the head over-optimizing."""


def run_seed(spec: str, seed: int, quality: float) -> dict:
    from rmsearch.data import Annotator, TaskConfig, load_data, make_task
    from rmsearch.ensembles import Aggregation, EnsembleConfig, fit_group
    from rmsearch.evaluate import compare_aggregations
    from rmsearch.launch.cli import DEFAULT_POINT

    config = EnsembleConfig.from_point(dict(DEFAULT_POINT))
    data = load_data(spec, seed=seed)
    task = make_task(data, TaskConfig(annotator=Annotator(quality=quality), seed=seed))
    group = fit_group(task, config.head, config.member_seeds)
    aggs = [Aggregation(name, 1.0 if param is None else param) for name, param in AGGREGATIONS]
    results = compare_aggregations(task, group.stats, group.val_scores, group.test_scores, aggs,
                                   standardized=config.standardize)
    gold = np.asarray(task.test.gold, np.float64)
    return {"seed": seed, "data": data.name, "fingerprint": data.fingerprint, "label_error": task.label_error,
            "gold_mean": float(gold.mean()), "gold_std": float(gold.std()), "train_seconds": group.seconds,
            "results": {name: r["test"] for name, r in results.items()}}


def _pm(values, digits: int = 3, sign: bool = False) -> str:
    v = np.asarray(values, np.float64)
    fmt = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{fmt.format(v.mean())} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}"


def metric(runs: list[dict], name: str, key: str) -> np.ndarray:
    return np.array([r["results"][name]["metrics"][key] for r in runs], np.float64)


def gap_growth(run: dict, name: str = "single") -> tuple[float, float]:
    """How fast the standardized proxy of the chosen candidate runs away from its standardized gold, per unit of
    log N, after the gold peak and up to it (0 after the peak when the peak is at N=M)."""
    c = run["results"][name]["curve"]
    n, proxy, gold = np.array(c["n"], np.float64), np.array(c["proxy"]), np.array(c["gold"])
    gap = proxy - (gold - run["gold_mean"]) / run["gold_std"]
    peak = int(np.argmax(gold))
    after = (gap[-1] - gap[peak]) / np.log(n[-1] / n[peak]) if peak < len(n) - 1 else 0.0
    before = (gap[peak] - gap[0]) / np.log(n[peak]) if peak > 0 else 0.0
    return float(after), float(before)


def table(runs: list[dict]) -> str:
    names = list(runs[0]["results"])
    lines = ["| | " + " | ".join(label for _, label in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in names:
        label = "single (each member alone, averaged)" if name == "single" else name
        cells = [_pm(metric(runs, name, k), 0 if k == "peak_n" else 3) for k, _ in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claims(runs: list[dict]) -> list[tuple[str, str, int]]:
    """(claim, statistic as mean ± std over seeds, seeds where it holds)."""
    out = []
    drop = metric(runs, "single", "drop")
    peak_n = metric(runs, "single", "peak_n")
    out.append((f"the single head over-optimizes: its BoN gold peaks before N=M and falls by more than {DROP}",
                f"drop {_pm(drop)}", int(np.sum((drop > DROP) & (peak_n < runs[0]['results']['single']['curve']['n'][-1])))))
    growth = np.array([gap_growth(r) for r in runs])
    out.append(("its proxy runs away from gold faster after the gold peak than before it (growth of the "
                "standardized proxy − gold gap per unit of log N, after minus before)",
                f"{_pm(growth[:, 0] - growth[:, 1], sign=True)}", int(np.sum(growth[:, 0] > growth[:, 1]))))
    mean_drop = metric(runs, "mean", "drop")
    out.append((f"mean over-optimizes too (drop > {DROP})", f"drop {_pm(mean_drop)}", int(np.sum(mean_drop > DROP))))
    names = [n for n in runs[0]["results"] if n != "single"]
    for name in names:
        d = metric(runs, name, "drop") - drop
        out.append((f"{name} falls less than the single head (drop − single's drop < 0)", _pm(d, sign=True),
                    int(np.sum(d < 0))))
    single = metric(runs, "single", "gold_final")
    for name in names:
        d = metric(runs, name, "gold_final") - single
        out.append((f"{name} ends above the single head (BoN gold at N=M − single's)", _pm(d, sign=True),
                    int(np.sum(d > 0))))
    mean = metric(runs, "mean", "gold_final")
    for name in names:
        if name.startswith(("min", "uwo")):
            d = metric(runs, name, "gold_final") - mean
            out.append((f"{name} ends above mean (BoN gold at N=M − mean's)", _pm(d, sign=True), int(np.sum(d > 0))))
    return out


def claims_table(runs: list[dict]) -> str:
    lines = ["| claim | mean ± std over seeds | holds in |", "|---|---|---|"]
    lines += [f"| {c} | {stat} | {k} of {len(runs)} seeds |" for c, stat, k in claims(runs)]
    return "\n".join(lines)


def per_seed_table(runs: list[dict]) -> str:
    names = list(runs[0]["results"])
    head = ["seed", "label error", *(f"{n.split(' ')[0]} final / drop" for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in runs:
        cells = [str(r["seed"]), f"{r['label_error']:.1%}"]
        cells += [f"{r['results'][n]['metrics']['gold_final']:.3f} / {r['results'][n]['metrics']['drop']:.3f}"
                  for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


STYLES = {"single": {"lw": 2.5, "color": "black", "ls": "--"}, "mean": {"lw": 1.8, "color": "tab:blue"},
          "min": {"lw": 1.8, "color": "tab:orange"}, "median": {"lw": 1.4, "color": "tab:cyan", "ls": ":"},
          "uwo": {"lw": 2.2, "color": "tab:red"}, "lcb": {"lw": 1.6, "color": "tab:purple", "ls": "-."}}


def plot(runs: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_g, ax_p) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name in runs[0]["results"]:
        curves = [r["results"][name]["curve"] for r in runs]
        kl = np.array(curves[0]["kl"])
        gold = np.array([c["gold"] for c in curves])
        proxy = np.array([c["proxy"] for c in curves])
        style = STYLES.get(name.split(" ")[0], {"lw": 1.6})
        line, = ax_g.plot(kl, gold.mean(0), marker="o", ms=3, label=name, **style)
        if name.startswith(("single", "uwo")):
            ax_g.fill_between(kl, gold.mean(0) - gold.std(0, ddof=1), gold.mean(0) + gold.std(0, ddof=1),
                              color=line.get_color(), alpha=0.12, lw=0)
        ax_p.plot(kl, proxy.mean(0), marker="o", ms=3, label=name, **style)
    top = runs[0]["results"]["single"]["curve"]["n"][-1]
    for ax, what in ((ax_g, "expected gold reward"), (ax_p, "expected proxy (standardized)")):
        ax.set_xlabel(f"KL(BoN ‖ base) of N of M drawn without replacement   (N = 1 … {top})")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    ax_g.set_title("gold reward of the chosen candidate")
    ax_p.set_title("proxy score of the chosen candidate")
    ax_g.legend(fontsize=8, loc="lower right")
    seeds = ", ".join(str(r["seed"]) for r in runs)
    fig.suptitle(f"rmsearch evaluate's default configuration, test split, mean over world seeds {seeds}\n"
                 f"(bands: ±1 std over seeds of single's and uwo's gold)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="world seeds (default 0-4)")
    ap.add_argument("--data", default="synth", help="built-in world spec without seed= (default synth)")
    ap.add_argument("--quality", type=float, default=2.0, help="annotator quality q (default 2.0, as evaluate)")
    ap.add_argument("--figure", help="write the seed-averaged BoN curves to this PNG")
    ap.add_argument("--json", help="write every seed's metrics and curves to this JSON file")
    ap.add_argument("--save", action="store_true", help="save the tables for README.md (benchmarks/results/)")
    args = ap.parse_args()
    if len(args.seeds) < 2:
        ap.error("give at least two seeds: the point is the spread over seeds")

    start = time.perf_counter()
    runs = [run_seed(args.data, s, args.quality) for s in args.seeds]
    wall = time.perf_counter() - start
    markdown = "\n".join([
        f"`rmsearch evaluate`'s default configuration on `--data {args.data}`, world seeds "
        f"{', '.join(map(str, args.seeds))} (test split, pools of {runs[0]['results']['single']['curve']['n'][-1]}); "
        f"label error {_pm([r['label_error'] for r in runs])}; {wall:.0f} s.", "",
        f"Mean ± std over {len(runs)} seeds:", "", table(runs), "", claims_table(runs), "",
        "Per seed (BoN gold at N=M / drop):", "", per_seed_table(runs)])
    print(markdown)
    if args.save:
        from readme import save

        metrics = [{"seed": r["seed"], "label_error": r["label_error"],
                    "metrics": {n: v["metrics"] for n, v in r["results"].items()}} for r in runs]
        print(f"\nsaved {save('aggregations', markdown, metrics)}; `python benchmarks/readme.py` puts it in README.md")
    if args.figure:
        plot(runs, args.figure)
        print(f"\nfigure: {args.figure}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1, default=float)


if __name__ == "__main__":
    main()
