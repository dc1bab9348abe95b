"""The router: image-conditioned multi-head attention over each class's description embeddings (semantic branch).

    router = Router(dim=512, heads=8, dropout=0.2, init="identity")
    sim, weights = router(image_feats, library_feats, mask)     # (B, d), (C, V, d), (C, V) -> (B, C), (B, C, V)

The router is the multi-head attention of the reference code (`x_bc = Attn(q=f_b, k=v=E_c)`, parameters in an
`nn.MultiheadAttention`, same state_dict keys) computed without repeating queries per class or keys per image:
the key/value projections are made once per call and contracted with einsum, the output projection is folded into
the class side, and cos(f_b, x_bc) is assembled from dot products and a per-class Gram matrix, so the (B, C, d)
routed features are never materialised. `naive_router` is the reference formulation, kept for tests and benchmarks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.errors import UserError

EPS = 1e-8  # floor on vector norms in cosines, as in F.cosine_similarity
ROUTER_INITS = ("identity", "pytorch")


class Router(nn.Module):
    """Image-conditioned multi-head attention over each class's description embeddings.

    init "identity" (default) starts the value and output projections at the identity (biases are zero), so at
    step 0 the routed feature is an attention-weighted mix of the class's descriptions and the semantic branch
    starts as zero-shot classification with the description library, just as the base branch starts from the
    class-name embeddings. "pytorch" keeps nn.MultiheadAttention's own random init throughout (reference code);
    on few-shot classes it starts from a random projection and generalises worse (see tests/test_training.py).
    The query/key projections keep PyTorch's init in both cases.

    `weights` returned by `forward` are the head-averaged attention probabilities *before* attention dropout (a
    distribution over each class's descriptions); the routed features use the dropped-out probabilities, exactly
    like `nn.MultiheadAttention` in training mode.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, init: str = "identity"):
        super().__init__()
        if dim % heads:
            raise UserError(f"model.heads = {heads} does not divide the feature width {dim}; pick a divisor of {dim}.")
        if init not in ROUTER_INITS:
            raise UserError(f"model: router init {init!r} is not one of {', '.join(ROUTER_INITS)}.")
        self.heads, self.head_dim, self.dropout = heads, dim // heads, dropout
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        if init == "identity":
            with torch.no_grad():  # value and output projections start as identity: x_bc = routed mix of E_c
                self.attn.in_proj_weight[2 * dim:].copy_(torch.eye(dim))
                self.attn.out_proj.weight.copy_(torch.eye(dim))

    def _project(self, feats: torch.Tensor, which: int) -> torch.Tensor:
        """Query (0), key (1) or value (2) projection, split into heads: (..., d) -> (..., h, e)."""
        weight = self.attn.in_proj_weight.chunk(3)[which]
        bias = self.attn.in_proj_bias.chunk(3)[which]
        return F.linear(feats, weight, bias).unflatten(-1, (self.heads, self.head_dim))

    def _probs(self, scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Softmax over descriptions; invalid ones (mask False) get zero weight. scores (..., K, h, V), mask (K, V)."""
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        return scores.softmax(-1)

    def _queries(self, image_feats: torch.Tensor) -> torch.Tensor:
        return self._project(image_feats, 0) * self.head_dim ** -0.5  # (B, h, e), scaled like nn.MultiheadAttention

    def forward(self, image_feats: torch.Tensor, library_feats: torch.Tensor, mask: torch.Tensor | None = None):
        """image_feats (B, d), library_feats (C, V, d), mask (C, V) True = valid -> sim (B, C), weights (B, C, V)."""
        queries = self._queries(image_feats)  # (B, h, e)
        keys, values = self._project(library_feats, 1), self._project(library_feats, 2)  # (C, V, h, e) each
        probs = self._probs(torch.einsum("bhe,cvhe->bchv", queries, keys), mask)  # (B, C, h, V)
        mixing = F.dropout(probs, self.dropout, self.training).flatten(2)  # (B, C, hV)

        out_weight = self.attn.out_proj.weight.unflatten(1, (self.heads, self.head_dim))  # (d, h, e)
        # x_bc = sum_{h,v} a_bchv u_chv + out_bias, with u_chv = out_proj_h @ value_chv (out_proj folded in).
        outputs = torch.einsum("cvhe,dhe->chvd", values, out_weight).flatten(1, 2)  # (C, hV, d): u
        image_out = (image_feats @ out_weight.flatten(1)).unflatten(-1, (self.heads, self.head_dim))  # (B, h, e)
        image_dot = torch.einsum("bhe,cvhe->bchv", image_out, values).flatten(2)  # (B, C, hV): f . u
        with torch.autocast(image_feats.device.type, enabled=False):  # a^T G a in bf16 would lose the norm
            sim = _routed_cosine(image_feats, mixing, image_dot, outputs, self.attn.out_proj.bias)
        return sim, probs.mean(2)

    def routed(self, image_feats: torch.Tensor, class_idx: torch.Tensor, library_feats: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Routed features x (P, d) of (image, class) pairs: image_feats (P, d), class_idx (P,)."""
        pair_library = library_feats[class_idx]  # (P, V, d)
        queries = self._queries(image_feats)  # (P, h, e)
        keys, values = self._project(pair_library, 1), self._project(pair_library, 2)  # (P, V, h, e)
        pair_mask = None if mask is None else mask[class_idx]  # (P, V)
        probs = self._probs(torch.einsum("phe,pvhe->phv", queries, keys), pair_mask)  # (P, h, V)
        probs = F.dropout(probs, self.dropout, self.training)
        mixed = torch.einsum("phv,pvhe->phe", probs, values).flatten(1)  # (P, d)
        return self.attn.out_proj(mixed)


def _routed_cosine(image_feats, mixing, image_dot, outputs, out_bias) -> torch.Tensor:
    """cos(f_b, x_bc) from f (B, d), a (B, C, hV), f.u (B, C, hV), u (C, hV, d), out_bias (d,) -> (B, C)."""
    image_feats, mixing, image_dot, outputs, out_bias = map(_at_least_float32,
                                                            (image_feats, mixing, image_dot, outputs, out_bias))
    dot = (mixing * image_dot).sum(-1) + (image_feats @ out_bias)[:, None]  # (B, C): f . x_bc
    gram = outputs @ outputs.transpose(1, 2)  # (C, hV, hV)
    gram_mix = (mixing.transpose(0, 1) @ gram).transpose(0, 1)  # (B, C, hV): G a
    bias_dot = outputs @ out_bias  # (C, hV): u . out_bias
    sq_norm = (mixing * (gram_mix + 2 * bias_dot)).sum(-1) + out_bias @ out_bias  # (B, C): ||x_bc||^2
    routed_norm = sq_norm.clamp_min(0).sqrt().clamp_min(EPS)  # (B, C)
    image_norm = image_feats.norm(dim=-1, keepdim=True).clamp_min(EPS)  # (B, 1)
    return dot / (image_norm * routed_norm)


def _at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def naive_router(attn: nn.MultiheadAttention, image_feats: torch.Tensor, library_feats: torch.Tensor,
                 mask: torch.Tensor | None = None):
    """Reference formulation: B*C sequences (query repeated per class, keys per image) -> sim, weights, routed.

    Returns sim (B, C), head-averaged weights (B, C, V) and the routed features (B, C, d). In training mode the
    weights are after dropout, as nn.MultiheadAttention returns them.
    """
    (batch, dim), (classes, views, _) = image_feats.shape, library_feats.shape
    queries = image_feats[:, None, None, :].expand(batch, classes, 1, dim).reshape(batch * classes, 1, dim)
    library = library_feats[None].expand(batch, classes, views, dim).reshape(batch * classes, views, dim)
    padding = None if mask is None else ~mask[None].expand(batch, classes, views).reshape(batch * classes, views)
    routed, weights = attn(queries, library, library, key_padding_mask=padding, need_weights=True)
    routed = routed.reshape(batch, classes, dim)  # (B, C, d)
    sim = F.cosine_similarity(image_feats[:, None, :], routed, dim=-1)  # (B, C)
    return sim, weights.reshape(batch, classes, views), routed
