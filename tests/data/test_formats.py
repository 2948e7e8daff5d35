"""Input formats of `rmsearch data embed`: each format read from a file written here, --fields and dotted paths,
hh-rlhf / UltraFeedback-binarized / OpenRLHF-shaped pairs, prompt ids, categories and lengths of pairs, and
bad input through the real command."""

import csv
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from test_embed import FakeEncoder, dialogue, write_jsonl

from rmsearch.data import describe, describe_text, embed_file, load_data
from rmsearch.data._formats import detect_kind, get, parse_fields, read_rows
from rmsearch.data._text_pairs import dialogue_prefix, read_pairs, render
from rmsearch.errors import DataError

ROWS = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "category": "math"},
    {"prompt": "What is 2+2?", "chosen": "Four.", "rejected": "Fish.", "category": "math"},
    {"prompt": "Name a colour.", "chosen": "Blue", "rejected": "Seven", "category": "chat"},
    {"prompt": "Say hi, with a comma, and \"quotes\".", "chosen": "hi, \"you\"", "rejected": "no", "category": None},
]


def write_csv(path, rows, gz=False):
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    data = buf.getvalue().encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_hf(path, rows):
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


WRITERS = {
    "jsonl": lambda d, rows: write_jsonl(d / "in.jsonl", rows),
    "jsonl.gz": lambda d, rows: write_jsonl(d / "in.jsonl.gz", rows, gz=True),
    "json array": lambda d, rows: (d / "in.json").write_text(json.dumps(rows)) and d / "in.json",
    "parquet": lambda d, rows: write_parquet(d / "in.parquet", rows),
    "csv": lambda d, rows: write_csv(d / "in.csv", rows),
    "csv.gz": lambda d, rows: write_csv(d / "in.csv.gz", rows, gz=True),
    "hf save_to_disk": lambda d, rows: write_hf(d / "hfds", rows),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_format_reads_the_same_pairs(tmp_path, kind):
    path = WRITERS[kind](tmp_path, ROWS)
    rows = read_rows(path)
    assert rows.format == {"jsonl.gz": "jsonl", "json array": "jsonl", "csv.gz": "csv",
                           "hf save_to_disk": "hf"}.get(kind, kind)
    assert [n for n, _ in rows.rows] == [1, 2, 3, 4] and rows.columns[:4] == ["prompt", "chosen", "rejected", "category"]
    pairs = read_pairs(path)
    assert pairs.chosen == ["Human: What is 2+2?\n\nAssistant: 4", "Human: What is 2+2?\n\nAssistant: Four.",
                            "Human: Name a colour.\n\nAssistant: Blue",
                            'Human: Say hi, with a comma, and "quotes".\n\nAssistant: hi, "you"']
    assert pairs.prompts == ["What is 2+2?", "What is 2+2?", "Name a colour.", 'Say hi, with a comma, and "quotes".']
    assert pairs.categories == ["math", "math", "chat", None]  # a CSV's empty cell is no category
    assert pairs.lengths == [(1, 1), (5, 5), (4, 5), (9, 2)]

    out = tmp_path / "ds"
    res = embed_file(path, out, encoder=FakeEncoder(), progress=False)
    assert res.meta["source"]["format"] == rows.format and len(res.meta["source"]["sha256"]) == 64
    data = load_data(out)
    assert data.kind == "pairs" and data.chosen.shape == (4, 8)
    np.testing.assert_array_equal(data.prompts, [0, 0, 1, 2])
    np.testing.assert_array_equal(data.category, [1, 1, 0, -1])
    assert data.categories == ("chat", "math")
    np.testing.assert_array_equal(data.lengths, [[1, 1], [5, 5], [4, 5], [9, 2]])


def test_format_detection_and_its_errors(tmp_path):
    src = write_jsonl(tmp_path / "pairs.txt", ROWS)
    with pytest.raises(DataError, match=r"cannot tell the format from the name \(\.txt\); give it with --format"):
        read_rows(src)
    assert len(read_rows(src, "jsonl").rows) == 4  # named explicitly, any suffix reads
    with pytest.raises(DataError, match=r"--format xml: unknown format; choose one of auto, jsonl, parquet, csv, hf"):
        read_rows(src, "xml")
    with pytest.raises(DataError, match="no line is a JSON object"):
        read_rows(write_csv(tmp_path / "x.csv", ROWS), "jsonl")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="not one written by the `datasets` package's save_to_disk"):
        read_rows(tmp_path / "empty_dir")
    import datasets

    d = datasets.Dataset.from_list(ROWS)
    datasets.DatasetDict({"train": d, "test": d}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match=r"holds a DatasetDict with splits test, train; give one split's folder, "
                                        r"e\.g\. .*dd/test"):
        read_rows(tmp_path / "dd")
    assert len(read_rows(tmp_path / "dd" / "train").rows) == 4


def test_fields_map_columns_and_dotted_paths(tmp_path):
    rows = [{"q": {"text": "Why?"}, "answers": [{"content": "Because."}, {"content": "No."}], "topic": "why"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    fields = parse_fields("prompt=q.text,chosen=answers.0.content,rejected=answers.-1.content,category=topic")
    pairs = read_pairs(src, fields=fields)
    assert pairs.chosen == ["Human: Why?\n\nAssistant: Because."] and pairs.rejected == ["Human: Why?\n\nAssistant: No."]
    assert pairs.categories == ["why"] and pairs.prompts == ["Why?"]
    assert get({"a.b": 1, "a": {"b": 2}}, "a.b") == 1  # a key with a dot wins over the path
    with pytest.raises(DataError, match=r"'chosn=a' is not NAME=COLUMN with NAME one of chosen, rejected"):
        parse_fields("chosn=a")


def test_hh_rlhf_pairs_share_a_prompt_by_their_dialogue_prefix(tmp_path):
    prefix = [("Human", "How do I bake bread?"), ("Assistant", "Flour, water, yeast."), ("Human", "How long?")]
    rows = [
        {"chosen": dialogue(*prefix, ("Assistant", "About an hour.")), "rejected": dialogue(*prefix, ("Assistant", "Forever."))},
        {"chosen": dialogue(*prefix, ("Assistant", "45 minutes at 220 C.")), "rejected": dialogue(*prefix, ("Assistant", "No."))},
        {"chosen": dialogue(("Human", "Hi"), ("Assistant", "Hello!")), "rejected": dialogue(("Human", "Hi"), ("Assistant", "Go away."))},
        {"chosen": "bare good", "rejected": "bare bad"},  # no dialogue, no prompt: its own prompt
        {"chosen": "bare good 2", "rejected": "bare bad 2"},
    ]
    assert dialogue_prefix(rows[0]["chosen"]) == dialogue(*prefix).strip() == dialogue_prefix(rows[0]["rejected"])
    assert dialogue_prefix("no turns") is None and dialogue_prefix(dialogue(("Assistant", "only"))) is None
    out = tmp_path / "ds"
    res = embed_file(write_jsonl(tmp_path / "hh.jsonl", rows), out, encoder=FakeEncoder(), progress=False)
    np.testing.assert_array_equal(np.load(out / "prompts.npy"), [0, 0, 1, 2, 3])
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["prompts"] == {"count": 4, "from": {"field": 0, "dialogue": 3, "none": 2}, "pairs_per_prompt": {
        "min": 1, "median": 1.0, "max": 2, "histogram": {"1": 3, "2": 1}}}
    assert meta["categories"] == [] and not (out / "category.npy").exists()
    np.testing.assert_array_equal(np.load(out / "lengths.npy")[:2], [[14, 8], [20, 3]])
    assert res.meta["counts"]["pairs"] == 5


def test_ultrafeedback_binarized_rows_load_without_flags(tmp_path):
    def conv(prompt, answer):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    rows = [{"prompt": p, "prompt_id": str(i), "chosen": conv(p, c), "rejected": conv(p, r), "messages": conv(p, c),
             "score_chosen": 8.0, "score_rejected": 3.5}
            for i, (p, c, r) in enumerate([("Write a haiku.", "Old pond, frog jumps in.", "A haiku."),
                                           ("Write a haiku.", "Autumn moonlight.", "Haiku haiku."),
                                           ("Sum 1 to 10.", "55", "45")])]
    path = write_parquet(tmp_path / "uf.parquet", rows)
    assert detect_kind(read_rows(path), parse_fields(None)) == "pairs"
    pairs = read_pairs(path)
    assert pairs.chosen[0] == "Human: Write a haiku.\n\nAssistant: Old pond, frog jumps in."
    assert pairs.rejected[2] == "Human: Sum 1 to 10.\n\nAssistant: 45"
    assert pairs.prompts == ["Write a haiku.", "Write a haiku.", "Sum 1 to 10."]
    assert pairs.lengths == [(24, 8), (17, 12), (2, 2)]


def test_openrlhf_rows_with_message_lists_and_strings(tmp_path):
    rows = [
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
         "chosen": [{"role": "assistant", "content": "Paris."}], "rejected": [{"role": "assistant", "content": "Rome."}]},
        {"prompt": "Capital of Spain?", "chosen": "Madrid.", "rejected": "Lisbon."},
        {"prompt": [{"from": "human", "value": "Capital of Italy?"}], "chosen": [{"from": "gpt", "value": "Rome."}],
         "rejected": [{"from": "gpt", "value": "Milan."}]},
        {"prompt": [{"role": "narrator", "content": "?"}], "chosen": "a", "rejected": "b"},  # unknown role: skipped
    ]
    assert render(rows[0]["prompt"]) == "\n\nHuman: Capital of France?"  # the system message is left out
    pairs = read_pairs(write_jsonl(tmp_path / "openrlhf.jsonl", rows))
    assert pairs.chosen == ["Human: Capital of France?\n\nAssistant: Paris.", "Human: Capital of Spain?\n\nAssistant: Madrid.",
                            "Human: Capital of Italy?\n\nAssistant: Rome."]
    assert pairs.prompts == ["Human: Capital of France?", "Capital of Spain?", "Human: Capital of Italy?"]
    assert pairs.skipped["not_string"] == 1 and pairs.examples["not_string"] == 4


def test_inspect_shows_pairs_per_prompt_categories_and_lengths(tmp_path):
    rows = [{"prompt": f"q{i // 3}", "chosen": f"good {i}", "rejected": f"bad {i}", "category": ["a", "b"][i % 2]}
            for i in range(9)]
    out = tmp_path / "ds"
    embed_file(write_jsonl(tmp_path / "in.jsonl", rows), out, encoder=FakeEncoder(), progress=False)
    info = describe(load_data(out))
    assert info["prompts"] == {"count": 3, "known": True, "pairs_per_prompt": {"min": 3, "median": 3.0, "max": 3}}
    assert info["categories"] == {"a": 5, "b": 4} and info["lengths"] is True
    assert describe_text(info) == ["prompts: 3, pairs per prompt min 3, median 3, max 3", "categories (pairs): a 5, b 4",
                                   "lengths: kept"]
    r = subprocess.run([sys.executable, "-m", "rmsearch", "data", "inspect", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "prompts: 3, pairs per prompt min 3, median 3, max 3" in r.stdout and "categories (pairs): a 5, b 4" in r.stdout


# --------------------------------------------------------------------------------- bad input, through the CLI


def embed_cli(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", "data", "embed", *map(str, args), "--no-progress"],
                          capture_output=True, text=True)


def test_missing_field_names_it_lists_the_columns_and_suggests_fields(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": "q", "good": "a", "bad": "b"}])
    out = tmp_path / "ds"
    r = embed_cli(src, "--out", out)
    assert r.returncode == 2 and not out.exists()
    err = " ".join(r.stderr.split())
    assert "no field 'chosen'/'rejected' (pairs) or 'prompt'/'response'/'score' (candidates)" in err
    assert "columns present: question, good, bad" in err and "--fields chosen=COLUMN,rejected=COLUMN" in err
    r = embed_cli(src, "--out", out, "--fields", "chosen=good,rejected=worse")
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and not out.exists()
    assert "no field 'rejected' (as column 'worse') in any line" in err and "--fields rejected=COLUMN" in err
    assert r.returncode == 2 and embed_cli(src, "--out", out, "--fields", "chosen=good,rejected=bad").returncode == 0


def test_unknown_format_and_empty_file_exit_2_without_a_folder(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "ds"
    r = embed_cli(src, "--out", out, "--format", "xml")
    assert r.returncode == 2 and not out.exists()
    assert "--format xml: unknown format; choose one of auto, jsonl, parquet, csv, hf" in " ".join(r.stderr.split())
    r = embed_cli(write_jsonl(tmp_path / "in.tsv", ROWS), "--out", out)
    assert r.returncode == 2 and not out.exists() and "give it with --format" in r.stderr
    (tmp_path / "empty.jsonl").write_text("\n\n")
    r = embed_cli(tmp_path / "empty.jsonl", "--out", out)
    assert r.returncode == 2 and not out.exists()
    assert "empty: no lines to read" in " ".join(r.stderr.split())


@pytest.mark.parametrize("model, message", [
    ("FOLDER", r"not a model folder.*neither config\.json.*nor modules\.json"),
    ("someorg/absent-model", r"not in the local Hugging Face cache.*hf download someorg/absent-model"),
])
def test_a_model_that_is_not_there_exits_2_and_leaves_no_folder(tmp_path, model, message):
    """A folder that is not a model, and a name not in the local cache, are refused before anything is written
    (the cache is an empty folder of the test's own: nothing is ever downloaded)."""
    import os
    import re

    src = write_jsonl(tmp_path / "in.jsonl", [{"chosen": "a good answer", "rejected": "a bad one"}])
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("not a model")
    out = tmp_path / "ds"
    r = subprocess.run([sys.executable, "-m", "rmsearch", "data", "embed", str(src), "--out", str(out), "--model",
                        str(tmp_path / "folder") if model == "FOLDER" else model, "--no-progress"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert r.returncode == 2, r.stderr
    assert re.search(message, " ".join(r.stderr.split())), r.stderr
    assert not out.exists()
