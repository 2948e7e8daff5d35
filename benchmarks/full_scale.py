"""The paper's full scale: a default `rmsearch launch` on the seed's released shapes, measured as a whole process.

    .venv/bin/python benchmarks/full_scale.py --trials 2 --cap 3000          # the seed's shapes (D=2048, 40,000 × 10
                                                                              # train, 2,000 × 500 test, float16)
    .venv/bin/python benchmarks/full_scale.py --scale 0.01 --dim 64 --trials 1   # smoke test, about a minute
    .venv/bin/python benchmarks/full_scale.py ... --extra=--prune            # a variant: launch options appended
    .venv/bin/python benchmarks/full_scale.py ... --save                     # also keep the table for README.md

1. `rmsearch data synth --dtype float16` writes the built-in world at the seed's shapes (times `--scale` prompts)
   into WORKDIR/world (kept and reused while the shapes match: `generated.json` records its seconds).
2. `rmsearch launch --data WORKDIR/world --trials T` runs as a child process with its final evaluation and export,
   stopped (SIGTERM: the launch exits cleanly) if it passes `--cap` seconds. Every second this script reads the
   resident memory (VmRSS, /proc) of that process and of all its descendants -- Ray's workers, raylet, GCS and
   object store -- and keeps each one's peak.
3. It reports the wall time of each phase (data generation; from the launch's own record: Ray's start, set-up, the
   trials; from its progress lines: each stage of the final evaluation), member trainings and the slot-seconds they
   took, scoring rows per second (each member job scores the validation and test candidates), peak RSS of the driver and of the largest other process against 1.5×
   the largest split as stored, and the export's test BoN against the two baselines with the paired intervals of
   the launch's report.
4. A search of 20 trials is extrapolated from the measured trials (`extrapolate`), and says so: 20 trials are too
   long to run here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_SHAPES = {"dim": 2048, "train_prompts": 40_000, "test_prompts": 2_000, "test_responses": 500}
"""The seed paper's released setup: 40,000 prompts × 10 responses to train on, 2,000 × 500 candidates for BoN."""
RSS_GOAL = 1.5
"""Peak RSS of any process at most this many times the largest split as stored."""
TARGET_TRIALS = 20
GOAL_S = 45 * 60
VAL_FRACTION = 0.5
"""Share of the test split's prompts that are the validation split (`TaskConfig.val_fraction`): what search jobs
score."""
DEFAULT_START_MEMBERS = (10, 8, 1, 5)
"""Members of the default space's four `starts` (its first trials), in order."""
MEAN_SAMPLED_MEMBERS = 5.5
"""Mean of the default space's `members: {int: [1, 10]}`: what a sampled trial trains, on average."""


def scaled_shapes(scale: float, dim: int) -> dict:
    """The seed's shapes at `dim` dims with `scale` times its prompts (train and test; at least 20 each)."""
    return {**SEED_SHAPES, "dim": dim, "train_prompts": max(20, round(SEED_SHAPES["train_prompts"] * scale)),
            "test_prompts": max(20, round(SEED_SHAPES["test_prompts"] * scale))}


def world(workdir: Path, shapes: dict, seed: int) -> tuple[Path, float, bool]:
    """The float16 world at `shapes` in workdir/world: written by `rmsearch data synth` unless already there.
    Returns its folder, the seconds its writing took (then or when it was written) and whether it was reused."""
    folder = workdir / "world"
    record = folder / "generated.json"
    want = {"config": {"seed": seed, **shapes}, "dtype": "float16"}
    if record.is_file():
        saved = json.loads(record.read_text())
        if {k: saved.get(k) for k in want} == want:
            return folder, saved["seconds"], True
    cmd = [sys.executable, "-m", "rmsearch", "data", "synth", "--out", str(folder), "--seed", str(seed),
           "--dim", str(shapes["dim"]), "--train-prompts", str(shapes["train_prompts"]),
           "--test-prompts", str(shapes["test_prompts"]), "--test-responses", str(shapes["test_responses"]),
           "--dtype", "float16"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    record.write_text(json.dumps({**want, "seconds": seconds}))
    return folder, seconds, False


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc (children of each thread)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def rss_and_name(pid: int) -> tuple[int, str, int] | None:
    """Resident KiB, a short name (the command line's first words) and the private (anonymous) resident KiB of
    `pid`; None once it is gone. The rest of RSS is file and shared-memory pages: the data files memory-mapped and
    Ray's object store, whose pages every process that reads them counts, but the machine holds once."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)
                      if k in ("VmRSS", "RssAnon")}
        rss = fields.get("VmRSS", 0)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    return rss, " ".join(Path(w).name if i == 0 else w for i, w in enumerate(cmd.split()[:3])), fields.get("RssAnon", 0)


def run_launch(cmd: list[str], log: Path, cap: float) -> dict:
    """Run `cmd` with its output in `log`, sampling its process tree's RSS each second; SIGTERM at `cap` seconds."""
    peaks: dict[int, tuple[int, str, int]] = {}
    anon: dict[int, int] = {}
    seen: dict[str, float] = {}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        start, capped = time.perf_counter(), False
        while proc.poll() is None:
            for pid in descendants(proc.pid):
                got = rss_and_name(pid)
                if got and got[0] > peaks.get(pid, (0,))[0]:
                    peaks[pid] = (*got, time.time())  # when: to name the trial (or stage) running then
                if got:
                    anon[pid] = max(anon.get(pid, 0), got[2])
            text = log.read_text(errors="replace")
            for name, marker in MARKERS.items():
                if name not in seen and marker in text:
                    seen[name] = time.perf_counter() - start
            if not capped and time.perf_counter() - start > cap:
                capped = True
                proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
        wall = time.perf_counter() - start
    driver = peaks.get(proc.pid, (0, "", 0, 0.0))[0]
    others = {pid: v for pid, v in peaks.items() if pid != proc.pid}
    top = max(others.values(), default=(0, "none", 0, 0.0))
    return {"rc": proc.returncode, "wall": wall, "capped": capped, "driver_kib": driver, "worker_kib": top[0],
            "worker_name": top[1], "worker_peak_at": top[3], "processes": len(peaks), "seen": seen, "driver_anon_kib": anon.get(proc.pid, 0),
            "worker_anon_kib": max((v for pid, v in anon.items() if pid != proc.pid), default=0)}


MARKERS = {"search": "progress: trials", "final": "progress: final evaluation stage 1/"}
"""Lines whose first appearance in the launch's output (to the second) marks the end of its start-up (data
loading, Ray's start, set-up) and of its search loop."""


STAGE = re.compile(r"progress: final evaluation stage (\d+)/\d+: ([^;]*?)(?:, member jobs [^;]*)?; (\d+) s elapsed")
TRIALS = re.compile(r"progress: trials (\d+)/\d+ done, member jobs (\d+)/\d+ done; (\d+) s elapsed")


def final_stages(log_text: str, capped: bool) -> dict[str, float]:
    """Seconds of each final-evaluation stage, from the launch's plain progress lines (each stage's first line);
    the last stage runs to the last line seen (marked where the cap stopped it)."""
    starts: dict[str, float] = {}
    last = 0.0
    for m in STAGE.finditer(log_text):
        starts.setdefault(m[2].strip(), float(m[3]))
        last = float(m[3])
    names = list(starts)
    out = {n: starts[names[i + 1]] - starts[n] for i, n in enumerate(names[:-1])}
    if names and names[-1] != "done":
        out[names[-1] + (" (stopped at the cap: not finished)" if capped else "")] = last - starts[names[-1]]
    return {n: s for n, s in out.items() if n != "done"}


def launch_record(study_db: Path) -> dict:
    """The launch's own record (`last_launch` in the study's user attributes) and each finished trial's members
    and seconds; empty where the launch stopped before writing it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not study_db.is_file():
        return {}
    study = optuna.load_study(study_name="rmsearch", storage=f"sqlite:///{study_db}")
    trials = [{"number": t.number, "state": t.state.name, "members": t.params.get("members"),
               "head": t.params.get("head"), "start": bool(t.user_attrs.get("start")),
               "begin": t.datetime_start.timestamp(), "end": t.datetime_complete.timestamp(),
               "seconds": t.duration.total_seconds()}
              for t in study.trials if t.state.name in ("COMPLETE", "PRUNED") and t.duration is not None]
    return {"last_launch": study.user_attrs.get("last_launch", {}), "trials": trials}


ROW = re.compile(r"^\| (seed-paper|linear) \| (BoN gold[^|]*?) \| ([\d.-]+) \| ([\d.-]+) \| ([+-][\d.]+) "
                 r"\[([+-][\d.]+), ([+-][\d.]+)\]")


def quality(report_md: Path) -> list[dict]:
    """The export against the baselines on the test split, paired per prompt, from the launch's report.md."""
    if not report_md.is_file():
        return []
    rows = []
    for line in report_md.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows.append({"against": m[1], "metric": m[2], "export": float(m[3]), "baseline": float(m[4]),
                         "diff": float(m[5]), "low": float(m[6]), "high": float(m[7])})
    return rows


def cache_record(store: Path) -> dict:
    """Member trainings in a study's head cache, with their training and job slot-seconds (each member's share of
    its job): what a launch stopped at the cap trained."""
    from rmsearch.search._store import MemberStore

    if not store.is_dir():
        return {"trained": 0, "fit_seconds": 0.0, "job_seconds": 0.0}
    cache = MemberStore(store)
    records = [cache.get(p.stem) for p in store.glob("*.safetensors")]
    return {"trained": len(records), "fit_seconds": sum(r.fit_seconds for r in records),
            "job_seconds": sum(r.seconds for r in records)}


def extrapolate_halving(trials: list[dict], search_s: float, final_s: float, fixed_s: float) -> dict:
    """A 20-trial `--halving` search from a launch stopped at the cap: the starts run whole (measured); the
    sampled trials (which climb rungs and are mostly pruned) are finished at the rate they settled at here, from
    the first sampled trial's start to the last one's end. Without a measured final evaluation the total is a
    lower bound: it leaves the final evaluation out."""
    sampled = [t for t in trials if not t["start"] and t["end"] is not None]
    out = {"trials_settled": len(trials), "sampled_settled": len(sampled), "search_s": search_s, "final_s": final_s,
           "fixed_s": fixed_s, "lower_bound": final_s != final_s}
    if len(trials) >= TARGET_TRIALS or len(sampled) < 2:
        out["total_s"] = search_s + fixed_s + (final_s if final_s == final_s else 0.0)
        out["lower_bound"] |= len(trials) < TARGET_TRIALS
        return out
    first = min(t["begin"] for t in sampled)
    rate = len(sampled) / (max(t["end"] for t in sampled) - first)
    left = TARGET_TRIALS - len(trials)
    out["search_s"] = search_s + left / rate
    out["total_s"] = out["search_s"] + fixed_s + (final_s if final_s == final_s else 0.0)
    out["sampled_per_min"] = rate * 60
    return out


def extrapolate(slots: int, fit_seconds: float, trained: int, final_s: float,
                fixed_s: float) -> dict:
    """A 20-trial default search from the measured trials: member trainings of the space's four starts plus 16
    sampled trials of `MEAN_SAMPLED_MEMBERS` each, at the measured slot-seconds per member, over the slots; plus the
    measured fixed costs (Ray's start, set-up) and final evaluation. It assumes the sampled trials' members cost
    what the measured ones did (they were MLPs; a sampled head may cost more or less)."""
    members = sum(DEFAULT_START_MEMBERS) + (TARGET_TRIALS - len(DEFAULT_START_MEMBERS)) * MEAN_SAMPLED_MEMBERS
    per_member = fit_seconds / trained if trained else float("nan")
    search = members * per_member / slots
    return {"trained": trained, "members": members, "slot_s_per_member": per_member, "search_s": search, "final_s": final_s,
            "fixed_s": fixed_s, "total_s": search + final_s + fixed_s}


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=ROOT).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="share of the seed's prompts (train and test)")
    ap.add_argument("--dim", type=int, default=SEED_SHAPES["dim"])
    ap.add_argument("--trials", type=int, default=2, help="trials to run (20 are extrapolated from them)")
    ap.add_argument("--cap", type=float, default=3600, help="stop the launch after this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "full-scale")
    ap.add_argument("--name", default="default", help="this variant's name (its run folder and row)")
    ap.add_argument("--extra", default="", help="more launch options, e.g. --extra=--prune")
    ap.add_argument("--reanalyze", action="store_true", help="read the last launch of this --name again instead of "
                    "running it (its log, study and report in WORKDIR)")
    ap.add_argument("--save", action="store_true", help="add this run to the README table (benchmarks/results/)")
    args = ap.parse_args(argv)

    shapes = scaled_shapes(args.scale, args.dim)
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder, gen_s, reused = world(args.workdir, shapes, args.seed)
    splits = {p.name: p.stat().st_size for p in folder.glob("embd_*.npy")}
    largest = max(splits.values())
    runs = args.workdir / f"runs-{args.name}"
    measured = args.workdir / f"launch-{args.name}.json"
    if runs.exists() and not args.reanalyze:
        import shutil

        shutil.rmtree(runs)
    cmd = [sys.executable, "-m", "rmsearch", "launch", "--data", str(folder), "--trials", str(args.trials),
           "--runs", str(runs), "--seed", str(args.seed), "--progress-every", "10", *args.extra.split()]
    print(f"# full_scale: {shapes} float16 ({largest / 2**30:.2f} GiB largest split), world "
          f"{'reused' if reused else 'written'} in {gen_s:.0f} s; {' '.join(cmd[2:])}", flush=True)
    log = args.workdir / f"launch-{args.name}.log"
    if args.reanalyze:
        proc = json.loads(measured.read_text())
    else:
        proc = {**run_launch(cmd, log, args.cap), "commit": head_commit()}
        measured.write_text(json.dumps(proc))
    text = log.read_text()
    rec = launch_record(runs / "rmsearch" / "study.db")
    last = rec.get("last_launch", {})
    stages = final_stages(text, proc["capped"])
    seen = proc["seen"]
    search_s = seen.get("final", proc["wall"]) - seen.get("search", 0.0)
    final_s = proc["wall"] - seen["final"] if "final" in seen else float("nan")
    phases = {"data generation (rmsearch data synth)": gen_s,
              "launch start-up (data, Ray start, set-up)": seen.get("search", float("nan")),
              **{f"  of which {k}": v for k, v in last.get("phases", {}).items() if k in ("ray start", "setup")},
              "trials (search loop)" + (" (stopped at the cap)" if "final" not in seen else ""): search_s,
              "final evaluation and export": final_s,
              **{f"  {k}": v for k, v in stages.items()},
              "launch, whole process": proc["wall"]}
    slots = last.get("slots", 2)
    # the launch records its member trainings when it ends; one stopped at the cap leaves them in its head cache
    cached = cache_record(runs / "rmsearch" / "members")
    trained = last.get("trained") or cached["trained"]
    fit_s = last.get("fit_seconds") or cached["fit_seconds"]
    job_s = last.get("job_seconds") or cached["job_seconds"]
    val_rows = round(shapes["test_prompts"] * VAL_FRACTION) * shapes["test_responses"]  # what a search job scores
    ext = (extrapolate_halving(rec.get("trials", []), search_s, final_s, seen.get("search", float("nan")))
           if "--halving" in args.extra else
           extrapolate(slots, fit_s, trained, final_s, seen.get("search", float("nan"))))
    data = {"name": args.name, "shapes": shapes, "scale": args.scale, "trials": args.trials, "extra": args.extra,
            "cap": args.cap, "splits_bytes": splits, "launch": proc, "phases": phases, "last_launch": last,
            "trial_records": rec.get("trials", []), "quality": quality(runs / "rmsearch" / "report" / "report.md"),
            "members": {"trained": trained, "fit_seconds": fit_s, "job_seconds": job_s, "val_rows": val_rows},
            "extrapolation": ext, "rss_ratio": max(proc["driver_kib"], proc["worker_kib"]) * 1024 / largest}
    md = markdown([data])
    print(md)
    if args.save:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from readme import RESULTS, save

        path = RESULTS / "full-scale.json"
        saved = json.loads(path.read_text()) if path.is_file() else {"data": []}
        # each column keeps the commit that measured it (columns saved before this was recorded: the file's stamp)
        runs_saved = [{"commit": saved.get("commit", "?"), **r} for r in saved["data"] if r["name"] != args.name]
        data["commit"] = proc.get("commit", "?")
        allruns = runs_saved + [data]
        print(f"\nsaved {save('full-scale', markdown(allruns), allruns)}; `python benchmarks/readme.py` puts it in "
              f"README.md")
    return 0 if proc["rc"] == 0 or proc["capped"] else 1


def members_of(r: dict) -> dict:
    """A run's member trainings: trained, training and job slot-seconds, validation rows each member scores."""
    if "members" in r:
        return r["members"]
    last, shapes = r["last_launch"], r["shapes"]  # runs saved before the head cache was read
    return {"trained": last["trained"], "fit_seconds": last["fit_seconds"], "job_seconds": last["job_seconds"],
            "val_rows": round(shapes["test_prompts"] * VAL_FRACTION) * shapes["test_responses"]}


def scoring_rate(m: dict) -> str:
    """Validation rows scored a second by one slot: each member's rows over the jobs' time outside training."""
    score_s = m["job_seconds"] - m["fit_seconds"]
    return f"{m['trained'] * m['val_rows'] / score_s:,.0f}" if score_s > 0 else "—"


def _min(s: float) -> str:
    return f"{s / 60:.1f} min" if s == s else "—"


def peaked_during(r: dict) -> str:
    """The trials (number and head) that were running when the largest other process peaked; the final
    evaluation after the last trial ended; blank for runs recorded before the time of the peak was."""
    at = r["launch"].get("worker_peak_at")
    if not at:
        return ""
    trials = r.get("trial_records", [])
    running = [f"trial {t['number']} ({t['members']}×{t['head']})" for t in trials
               if t.get("begin", at + 1) <= at <= t.get("end", float("inf"))]
    if running:
        return ", ".join(running)
    return "the final evaluation" if trials and at > max(t.get("end", 0) for t in trials) else "set-up"


def markdown(runs: list[dict]) -> str:
    """One column per run (variant): phases, members, scoring rate, memory, quality, the 20-trial extrapolation."""
    head = "| | " + " | ".join(f"{r['name']} ({r['trials']} trials{', ' + r['extra'] if r['extra'] else ''})"
                                 for r in runs) + " |"
    lines = [head, "|---" * (len(runs) + 1) + "|"]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in runs) + " |")

    phase_names = list(dict.fromkeys(k for r in sorted(runs, key=lambda r: -len(r["phases"])) for k in r["phases"]))
    for k in phase_names:
        row(k, lambda r, k=k: _min(r["phases"][k]) if k in r["phases"] else "")
    row("stopped at the cap", lambda r: "yes" if r["launch"]["capped"] else "no")
    row("measured on commit", lambda r: r.get("commit", "this one"))
    row("member trainings (training slot-seconds each, mean)", lambda r: f"{members_of(r)['trained']} "
        f"({members_of(r)['fit_seconds'] / max(1, members_of(r)['trained']):.0f} s)")
    row("member jobs scoring the validation candidates (1 slot), rows/s", lambda r: scoring_rate(members_of(r)))
    row("peak RSS: driver / largest other process", lambda r: f"{r['launch']['driver_kib'] / 2**20:.2f} / "
        f"{r['launch']['worker_kib'] / 2**20:.2f} GiB")
    row("of which private (anonymous): driver / largest other process", lambda r: f"{r['launch']['driver_anon_kib'] / 2**20:.2f} / "
        f"{r['launch']['worker_anon_kib'] / 2**20:.2f} GiB")
    if any(r["launch"].get("worker_peak_at") for r in runs):
        row("the largest other process peaked while running", peaked_during)
    row(f"peak RSS / largest split as stored (goal ≤ {RSS_GOAL}×)", lambda r: f"**{r['rss_ratio']:.2f}×** "
        f"({'met' if r['rss_ratio'] <= RSS_GOAL else 'not met'})")
    for against in ("seed-paper", "linear"):
        row(f"export − {against}, test BoN gold @ N=M [95% CI]", lambda r, a=against: next(
            (f"{q['diff']:+.3f} [{q['low']:+.3f}, {q['high']:+.3f}]" for q in r["quality"]
             if q["against"] == a and "N=M" in q["metric"]), "—"))
    row("export's test BoN gold @ N=M", lambda r: next((f"{q['export']:.3f}" for q in r["quality"]
                                                      if "N=M" in q["metric"]), "—"))
    row("trials settled (complete or pruned) when the launch ended", lambda r: str(len(r.get("trial_records", []))))
    row(f"**{TARGET_TRIALS} trials with the final evaluation, extrapolated** (goal < {GOAL_S // 60} min)",
        lambda r: f"**{'≥ ' if r['launch']['capped'] else ''}{_min(r['extrapolation']['total_s'])}**")
    r0 = runs[0]
    shapes = r0["shapes"]
    notes = [
        "", f"World: the built-in one at D={shapes['dim']}, {shapes['train_prompts']:,} × 10 training responses, "
        f"{shapes['test_prompts']:,} × {shapes['test_responses']} test candidates (half of them the validation "
        f"split), float16 on disk ({max(r0['splits_bytes'].values()) / 2**30:.2f} GiB largest split). Measured: "
        "every row above but the last, from one whole `rmsearch launch` process per column (default space, its "
        "final evaluation and export; peak RSS sampled each second over the launch's process tree). "
        f"Extrapolated: the last row, {TARGET_TRIALS} trials = the default space's four starts "
        f"({' + '.join(map(str, DEFAULT_START_MEMBERS))} members) and {TARGET_TRIALS - 4} sampled trials of "
        f"{MEAN_SAMPLED_MEMBERS} members on average, at the measured slot-seconds per member over the worker slots, "
        "plus the measured Ray start, set-up and final evaluation; it assumes sampled members cost what the "
        "measured ones did."]
    if any("--halving" in r["extra"] for r in runs):
        notes += ["", "A `--halving` column is extrapolated otherwise: its starts run whole and are measured; its "
                     "sampled trials (which climb rungs of training pairs, most pruned at the first) are finished at "
                     "the rate they settled at in the run, from the first sampled trial's start to the last one's "
                     "end; where the launch stopped before its final evaluation, that is left out, and the total is "
                     "a lower bound (≥)."]
    return "\n".join(lines + notes)


if __name__ == "__main__":
    sys.exit(main())
