"""One entry point from a `--data` value to data: `synth[:key=value,...]`, a seed-format folder
(optionally `FOLDER::stem`), or a pair-dataset folder written by rmsearch."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np

from rmsearch.data._files import PAIR_MANIFEST, find_seed_files, load_pair_folder, load_seed_folder, read_manifest
from rmsearch.data._kinds import GoldData, PairData
from rmsearch.data._synth import SynthConfig, synth
from rmsearch.errors import DataError


def parse_synth(spec: str) -> SynthConfig:
    """`synth` or `synth:seed=3,dim=64` -> SynthConfig."""
    _, _, opts = spec.partition(":")
    kinds = {f.name: f.type for f in fields(SynthConfig)}
    values = {}
    for item in filter(None, opts.split(",")):
        key, eq, val = item.partition("=")
        if not eq or key not in kinds:
            raise DataError(f"--data {spec}: {item!r} is not key=value with a key among {', '.join(kinds)}.")
        try:
            values[key] = float(val) if kinds[key] == "float" else int(val)
        except ValueError:
            raise DataError(f"--data {spec}: {key}={val!r} is not a number.") from None
    return SynthConfig(**values)


def load_data(spec: str | Path, seed: int | None = None) -> GoldData | PairData:
    s = str(spec)
    if s == "synth" or s.startswith("synth:"):
        config = parse_synth(s)
        if seed is not None and "seed=" not in s:
            config = SynthConfig(**{**config.__dict__, "seed": seed})
        return synth(config)
    path_s, _, stem = s.partition("::")
    path = Path(path_s)
    if not path.exists():
        raise DataError(f"--data {s}: no such file or folder. Give 'synth', a seed-format folder or a pair-dataset "
                        f"folder.")
    if not path.is_dir():
        raise DataError(f"--data {s}: is a file; give the folder that holds the dataset's .npy files.")
    if (path / PAIR_MANIFEST).exists():
        meta = read_manifest(path)
        if meta["kind"] == "gold":
            return load_seed_folder(path, stem or meta.get("stem"), meta)
        return load_pair_folder(path)
    if find_seed_files(path) is not None:
        return load_seed_folder(path, stem or None)
    raise DataError(
        f"--data {s}: the folder holds neither seed-format files (embd_*_train.npy, reward_*_train.npy, ...) nor a "
        f"pair dataset ({PAIR_MANIFEST} with chosen.npy and rejected.npy)."
    )


def describe(data: GoldData | PairData, label_error: float | None = None) -> dict:
    """Facts for `rmsearch data inspect`, as a JSON-able dict: shapes, gold statistics, and where the data came
    from text, prompts (pairs per prompt), categories with counts (prompts of a gold split, pairs of pair data) and
    whether response lengths are kept."""
    out: dict = {"name": data.name, "kind": data.kind, "dim": data.dim, "fingerprint": data.fingerprint}
    if isinstance(data, GoldData):
        for split, cs in (("train", data.train), ("test", data.test)):
            g = np.asarray(cs.gold, dtype=np.float64)
            out[split] = {
                "prompts": cs.prompts, "responses": cs.responses, "dim": cs.dim, "dtype": str(cs.embeddings.dtype),
                "gold": {"mean": float(g.mean()), "std": float(g.std()), "min": float(g.min()), "max": float(g.max()),
                         "within_prompt_std": float(g.std(axis=1).mean())},
                "categories": _category_counts(cs.category, data.categories),
                "lengths": cs.lengths is not None,
            }
    else:
        out["pairs"] = {"count": int(data.chosen.shape[0]), "dim": data.dim, "dtype": str(data.chosen.dtype)}
        per = np.bincount(data.groups)
        per = per if len(per) else np.zeros(1, np.int64)
        out["prompts"] = {"count": int(np.count_nonzero(per)), "known": data.prompts is not None,
                          "pairs_per_prompt": {"min": int(per.min()), "median": float(np.median(per)),
                                               "max": int(per.max())}}
        out["categories"] = _category_counts(data.category, data.categories)
        out["lengths"] = data.lengths is not None
    if label_error is not None:
        out["label_error_rate"] = label_error
    out["files"] = data.files
    return out


def _category_counts(codes: np.ndarray | None, names: tuple[str, ...]) -> dict[str, int] | None:
    """{name: count} of the codes (-1 counted as "(none)"); None where the data has no categories."""
    if codes is None:
        return None
    codes = np.asarray(codes, np.int64)
    out = {name: int((codes == i).sum()) for i, name in enumerate(names)}
    unknown = int(((codes < 0) | (codes >= len(names))).sum())
    if unknown:
        out["(none)"] = unknown
    return out


def describe_text(info: dict) -> list[str]:
    """The lines `rmsearch data inspect` prints about prompts, categories and lengths (from `describe`)."""

    def counts(c: dict | None) -> str:
        return "none" if not c else ", ".join(f"{name} {n:,}" for name, n in c.items())

    def lengths(kept: bool) -> str:
        return "kept" if kept else "absent"

    if info["kind"] == "gold":
        return [f"{split:5s} categories (prompts): {counts(info[split]['categories'])}; response lengths: "
                f"{lengths(info[split]['lengths'])}" for split in ("train", "test")]
    p = info["prompts"]
    ppp = p["pairs_per_prompt"]
    prompts = (f"prompts: {p['count']:,}, pairs per prompt min {ppp['min']}, median {ppp['median']:g}, max "
               f"{ppp['max']}" if p["known"] else f"prompts: not recorded (each of the {p['count']:,} pairs counts "
               f"as its own prompt)")
    return [prompts, f"categories (pairs): {counts(info['categories'])}", f"lengths: {lengths(info['lengths'])}"]
