"""Pooling a model's token states into one vector per text.

Every pooling reads the attention mask, never the position of a column, so a left-padding tokenizer (padding
before the text, as decoder models often use) and a right-padding one give the same vector for the same text:

- `last`: the state of the last non-padding token. A decoder (causal LM) has read the whole text only there, so
  this is how decoder embeddings are taken ("Reusing Embeddings", Sun et al. 2025: the last token of the last
  hidden layer).
- `mean`: the mean over the non-padding tokens (sentence-transformers' usual pooling; the default for encoder
  models such as BERT, whose every token has read the whole text).
- `cls`: the state of the first non-padding token (BERT's [CLS]).

Decoders with absolute position embeddings (GPT-2) would also see a left-padded text at shifted positions, so
for left padding `padded_positions` gives the position ids a model should get: each token's index among the
non-padding tokens, as if the text stood alone.
"""

from __future__ import annotations

POOLINGS = ("last", "mean", "cls")


def pool(hidden, mask, how: str):
    """(B, T, H) token states and their (B, T) attention mask (1 = token, 0 = padding) -> (B, H) float32."""
    import torch

    hidden = hidden.float()
    mask = mask.to(hidden.device)
    if how == "mean":  # a batched matmul: half the time of multiplying out a (B, T, H) copy and summing it
        weights = mask.to(hidden.dtype)
        return torch.bmm(weights.unsqueeze(1), hidden).squeeze(1) / weights.sum(1, keepdim=True).clamp(min=1.0)
    if how == "last":
        # the last 1 of each row: counting from the end, the first 1 of the flipped mask
        index = mask.shape[1] - 1 - mask.flip(1).int().argmax(1)
    elif how == "cls":
        index = mask.int().argmax(1)  # the first 1 of each row
    else:
        raise ValueError(f"pooling {how!r}: expected one of {', '.join(POOLINGS)}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def padded_positions(mask):
    """Position ids for a padded batch: 0, 1, 2, … over each row's non-padding tokens (padding gets 0)."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)
