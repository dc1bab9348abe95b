"""Text encoding without padding work: CLIP's causal text transformer run only up to the longest prompt of a batch.

    feats = encode_texts(model, tokenizer, texts, batch_size=256, device="cpu")   # (N, d) L2-normalised float32
    tower = text_tower(model)                       # None when trimming would change the result (then: padded)
    feats = encode_embeddings(tower, embeds, ends)  # differentiable: token embeddings (B, L, w), ends (B,) -> (B, d)

CLIP pads every prompt to 77 tokens, but its text transformer is causal (token i attends to tokens <= i) and the
text feature is read at the end-of-text token, so nothing after that token can change it. `encode_texts` sorts the
prompts by length, and runs each batch only up to its longest prompt: the same features as `model.encode_text` on
the padded tokens (to float rounding, ~1e-7) at a fraction of the work (descriptions are ~20-45 tokens). Used by
`mdpr embed-classes` and `mdpr embed-library` through `Encoder.encode_texts`.

`encode_embeddings` is the same trimmed forward from token embeddings instead of token ids, with gradients: a
prompt learner that puts learnable context vectors in token-embedding space (CoOp) passes its (B, 77, w)
embeddings and the end-of-text positions `end_positions(tower, tokens)` through the frozen encoder with it.
Towers that are not causal or do not pool at the end-of-text token (e.g. SigLIP's) have no `text_tower`:
`encode_texts` then runs open_clip's own padded `encode_text`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.core.progress import progress_bar


@dataclass(frozen=True)
class TextTower:
    """The parts of an open_clip text encoder that the trimmed forward uses (shared with the model, not copied)."""

    token_embedding: torch.nn.Module
    positional_embedding: torch.Tensor      # (77, w)
    transformer: torch.nn.Module
    ln_final: torch.nn.Module
    text_projection: torch.Tensor | torch.nn.Module | None
    causal_mask: torch.Tensor               # (77, 77) additive, -inf above the diagonal
    pool_type: str                          # argmax (end-of-text has the largest token id) or eos
    eos_id: int | None


def text_tower(model) -> TextTower | None:
    """The text tower of an open_clip CLIP / CustomTextCLIP model when its output at the pooled token depends only
    on the tokens up to it (causal mask, argmax or eos pooling, no padding mask, no class token); else None."""
    tower = getattr(model, "text", model)  # CustomTextCLIP keeps the tower in .text; CLIP holds its parts itself
    if tower is model:
        pool_type, eos_id = getattr(model, "text_pool_type", "argmax"), getattr(model, "text_eos_id", None)
    else:
        pool_type, eos_id = getattr(tower, "pool_type", None), getattr(tower, "eos_id", None)
        if getattr(tower, "cls_emb", None) is not None or getattr(tower, "use_pad_mask", False):
            return None
    mask = getattr(tower, "attn_mask", None)
    if mask is None or pool_type not in ("argmax", "eos") or not hasattr(tower, "token_embedding"):
        return None
    return TextTower(tower.token_embedding, tower.positional_embedding, tower.transformer, tower.ln_final,
                     tower.text_projection, mask, pool_type, eos_id)


def end_positions(tower: TextTower, tokens: torch.Tensor) -> torch.Tensor:
    """Index of the token each prompt's feature is read at (its end-of-text token): tokens (B, L) -> (B,)."""
    if tower.pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == tower.eos_id).int().argmax(dim=-1)


def encode_embeddings(tower: TextTower, embeds: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Text features (B, d), not normalised, from token embeddings (B, L, w) read at positions `ends` (B,).

    Runs the transformer on the first max(ends) + 1 positions only; differentiable in `embeds` and the weights.
    """
    length = int(ends.max()) + 1
    cast = tower.transformer.get_cast_dtype()
    x = embeds[:, :length].to(cast) + tower.positional_embedding[:length].to(cast)  # (B, l, w)
    x = tower.transformer(x, attn_mask=tower.causal_mask[:length, :length])  # (B, l, w)
    pooled = tower.ln_final(x[torch.arange(len(x), device=x.device), ends])  # (B, w): layer norm is per token
    if tower.text_projection is None:
        return pooled
    if isinstance(tower.text_projection, torch.nn.Module):
        return tower.text_projection(pooled)
    return pooled @ tower.text_projection  # (B, d)


def encode_tokens(model, tower: TextTower | None, tokens: torch.Tensor) -> torch.Tensor:
    """`model.encode_text(tokens)` (B, d), computed up to the longest prompt of the batch when `tower` allows."""
    if tower is None:
        return model.encode_text(tokens)
    ends = end_positions(tower, tokens)  # (B,)
    return encode_embeddings(tower, tower.token_embedding(tokens[:, :int(ends.max()) + 1]), ends)


def encode_texts(model, tokenizer, texts: list[str], batch_size: int, device, progress: bool = False,
                 label: str = "encode texts", with_norms: bool = False):
    """Strings (at least one) -> (N, d) L2-normalised float32 in input order; batches of similar length, longest
    first, each with a progress bar on stderr when `progress` and the work takes more than a few seconds.
    `with_norms`: also each text feature's norm before normalisation, (N,) float32."""
    tower = text_tower(model)
    tokens = tokenizer(texts)  # (N, 77)
    lengths = end_positions(tower, tokens) if tower is not None else torch.zeros(len(texts), dtype=torch.long)
    order = torch.argsort(lengths, descending=True, stable=True)  # (N,)
    out, norms = None, torch.empty(len(texts))
    with torch.inference_mode(), progress_bar(len(texts), label, "text", progress) as bar:
        for rows in order.split(batch_size):
            raw = encode_tokens(model, tower, tokens[rows].to(device)).float()  # (b, d)
            feats = F.normalize(raw, dim=-1).cpu()
            if out is None:
                out = torch.empty(len(texts), feats.shape[1])
            out[rows], norms[rows] = feats, raw.norm(dim=-1).cpu()
            bar.update(len(rows))
    return (out.numpy(), norms.numpy()) if with_norms else out.numpy()
