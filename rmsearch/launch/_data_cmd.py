"""`rmsearch data synth | inspect | embed`: make, inspect and embed datasets."""

from __future__ import annotations

import json
from pathlib import Path

from rmsearch.launch._args import HelpFormatter, seed_type


def add_data_parsers(sub) -> None:
    data = sub.add_parser("data", help="make, embed and inspect datasets").add_subparsers(dest="data_command",
                                                                                          required=True)
    p = data.add_parser("synth", help="write the built-in gold world as seed-format files",
                        formatter_class=HelpFormatter,
                        description="Write the built-in gold world as seed-format files (embd_/reward_ × train/test), "
                                    "loadable with --data FOLDER.")
    p.add_argument("--out", required=True, metavar="FOLDER", help="folder to write the four .npy files into (created "
                   "if missing; files of the same name are replaced); required")
    p.add_argument("--seed", type=seed_type, default=0, help="the world is drawn from this seed, bit for bit")
    p.add_argument("--dim", type=int, default=32, help="embedding dimension D (at least 6)")
    p.add_argument("--train-prompts", type=int, default=1000, help="training prompts, 10 responses each")
    p.add_argument("--test-prompts", type=int, default=400, help="test prompts (validation prompts are carved out of "
                   "them)")
    p.add_argument("--test-responses", type=int, default=500, help="candidates per test prompt: M, the largest N of "
                   "best-of-N")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="embeddings on disk (float16 "
                   "as the seed paper's release: half the size); written a block of prompts at a time, so a split "
                   "larger than memory writes too")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("inspect", help="print kind, splits, shapes, dim, dtype, gold statistics, label error rate",
                        formatter_class=HelpFormatter)
    p.add_argument("path", help="a dataset: a seed-format folder, a pair-dataset folder, or synth[:key=value,...]")
    p.add_argument("--json", action="store_true", help="print the facts as JSON instead of a summary")
    p.set_defaults(func=cmd_data_inspect)
    from rmsearch.data import add_embed_parser

    add_embed_parser(data)


def cmd_data_synth(args) -> int:
    from rmsearch.data import SynthConfig, write_synth_folder

    config = SynthConfig(seed=args.seed, dim=args.dim, train_prompts=args.train_prompts,
                         test_prompts=args.test_prompts, test_responses=args.test_responses)
    files = write_synth_folder(Path(args.out), config, dtype=args.dtype)
    for role, path in files.items():
        print(f"{role:13s} {path}")
    return 0


def cmd_data_inspect(args) -> int:
    from rmsearch.data import TaskConfig, check_not_degenerate, describe, describe_text, load_data, make_task

    data = load_data(args.path)
    check_not_degenerate(data)
    error = make_task(data, TaskConfig()).label_error if data.kind == "gold" else None
    info = describe(data, label_error=error)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['kind']} data, dim {info['dim']}, fingerprint {info['fingerprint']}")
    if data.kind == "gold":
        for split in ("train", "test"):
            s = info[split]
            g = s["gold"]
            print(f"  {split:5s} P={s['prompts']} K={s['responses']} D={s['dim']} {s['dtype']}  gold mean "
                  f"{g['mean']:.3f} std {g['std']:.3f} [{g['min']:.3f}, {g['max']:.3f}], within-prompt std "
                  f"{g['within_prompt_std']:.3f}")
        print(f"  label error rate of the default annotator (Bradley-Terry, q=2, within-prompt): {error:.3f}")
    else:
        print(f"  pairs M={info['pairs']['count']} D={info['dim']} {info['pairs']['dtype']}")
    for line in describe_text(info):
        print(f"  {line}")
    return 0
