"""The MDPR head trained on cached CLIP features: learnable class prompts + an image-conditioned router.

    model = MDPRModel(class_feats, library_feats, library_mask, ModelParams())   # (C, d), (C, V, d), (C, V)
    out = model(image_feats)                    # image_feats (B, d)
    out["base"], out["sem"], out["weights"]     # (B, C), (B, C), (B, C, V)
    logits = fuse(out["base"], out["sem"], 0.5)

The router is the multi-head attention of the reference code (`x_bc = Attn(q=f_b, k=v=E_c)`, parameters in an
`nn.MultiheadAttention`, same state_dict keys) computed without repeating queries per class or keys per image:
the key/value projections are made once per call and contracted with einsum, the output projection is folded into
the class side, and cos(f_b, x_bc) is assembled from dot products and a per-class Gram matrix, so the (B, C, d)
routed features are never materialised. `naive_router` is the reference formulation, kept for tests and benchmarks.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import UserError
from pipeline.params import ModelParams

EPS = 1e-8  # floor on vector norms in cosines, as in F.cosine_similarity
MAX_LOGIT_SCALE = 100.0
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


class MDPRModel(nn.Module):
    """Base branch (class-name embeddings + learnable residual) and semantic branch (router) on cached features.

    Frozen inputs are buffers kept in their given dtype (float16 caches stay float16) and cast per call.
    `library_prior` (C, V) defaults to cos(description, class-name embedding), 0 where masked, as in library.h5.
    `seed` (optional) makes the parameter init independent of the global RNG; `router_init` is Router's `init`.
    """

    def __init__(self, class_feats: torch.Tensor, library_feats: torch.Tensor, library_mask: torch.Tensor | None,
                 params: ModelParams = ModelParams(), library_prior: torch.Tensor | None = None,
                 seed: int | None = None, router_init: str = "identity"):
        super().__init__()
        class_feats, library_feats = torch.as_tensor(class_feats), torch.as_tensor(library_feats)
        classes, views, dim = library_feats.shape
        if tuple(class_feats.shape) != (classes, dim):
            raise UserError(f"model: class features {tuple(class_feats.shape)} do not match the library "
                            f"{tuple(library_feats.shape)} (C, V, d); rebuild the feature caches with the same model.")
        mask = torch.ones(classes, views, dtype=torch.bool) if library_mask is None else torch.as_tensor(library_mask).bool()
        if not mask.any(1).all():
            raise UserError("model: some class has no valid description in the library mask; rebuild the library.")
        if library_prior is None:
            prior = F.cosine_similarity(library_feats.float(), class_feats.float()[:, None, :], dim=-1)
            library_prior = prior.masked_fill(~mask, 0.0)  # (C, V)
        self.params = params
        self.register_buffer("class_feats", class_feats)  # (C, d)
        self.register_buffer("library_feats", library_feats)  # (C, V, d)
        self.register_buffer("library_mask", mask)  # (C, V)
        self.register_buffer("library_prior", torch.as_tensor(library_prior).float())  # (C, V)
        rng = torch.random.fork_rng() if seed is not None else contextlib.nullcontext()
        with rng:
            if seed is not None:
                torch.manual_seed(seed)
            self.residual = nn.Parameter(torch.zeros(classes, dim))  # r_c
            self.logit_scale = nn.Parameter(torch.tensor(math.log(params.logit_scale)))  # log s, as in CLIP
            self.adapter = _adapter(dim) if params.adapter else None
            self.router = Router(dim, params.heads, params.dropout, router_init)

    def scale(self) -> torch.Tensor:
        """s = exp(logit_scale), clamped at 100."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def class_weights(self) -> torch.Tensor:
        """w_c = normalise(t_c + alpha * r_c): (C, d)."""
        return F.normalize(self.class_feats.to(self.residual.dtype) + self.params.residual_scale * self.residual, dim=-1)

    def adapt(self, image_feats: torch.Tensor) -> torch.Tensor:
        """Cast, optional CLIP-Adapter mix f' = (1 - ratio) f + ratio MLP(f), L2-normalise: (B, d) -> (B, d)."""
        feats = F.normalize(image_feats.to(self.residual.dtype), dim=-1)
        if self.adapter is not None:
            ratio = self.params.adapter_ratio
            feats = F.normalize((1 - ratio) * feats + ratio * self.adapter(feats), dim=-1)
        return feats

    def library(self) -> torch.Tensor:
        return self.library_feats.to(self.residual.dtype)  # (C, V, d)

    def description_means(self) -> torch.Tensor:
        """Each class's normalised mean valid description embedding: (C, d)."""
        valid = self.library_mask[..., None].to(self.residual.dtype)  # (C, V, 1)
        return F.normalize((self.library() * valid).sum(1), dim=-1)

    def routed(self, feats: torch.Tensor, class_idx: torch.Tensor) -> torch.Tensor:
        """Routed features (P, d) of adapted image features `feats` (P, d) for classes class_idx (P,)."""
        return self.router.routed(feats, class_idx, self.library(), self.library_mask)

    def forward(self, image_feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """image_feats (B, d) -> base (B, C), sem (B, C), weights (B, C, V), feats (B, d) (the adapted features)."""
        feats = self.adapt(image_feats)  # (B, d)
        scale = self.scale()
        base = scale * feats @ self.class_weights().T  # (B, C)
        sim, weights = self.router(feats, self.library(), self.library_mask)  # (B, C), (B, C, V)
        return {"base": base, "sem": scale * sim, "weights": weights, "feats": feats}


def _adapter(dim: int) -> nn.Sequential:
    """CLIP-Adapter MLP: d -> d/4 -> d, no biases, ReLU after each layer."""
    hidden = max(dim // 4, 1)
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, dim, bias=False), nn.ReLU())


def fuse(base: torch.Tensor, sem: torch.Tensor, fusion_weight: float) -> torch.Tensor:
    """w * base + (1 - w) * sem: (B, C)."""
    return fusion_weight * base + (1 - fusion_weight) * sem
