"""The router: image-conditioned multi-head attention over each class's description embeddings (semantic branch).

    router = Router(dim=512, heads=8, dropout=0.2, init="identity", qk_init="identity", scale=10.0)
    sim, weights = router(image_feats, library_feats, mask)     # (B, d), (C, V, d), (C, V) -> (B, C), (B, C, V)
    side = router.class_side(library_feats, mask)               # frozen weights: the class side once per run
    sim, weights = router(image_feats, None, side=side)
    sides = router.class_sides(library_feats, mask)             # the same, in chunks of SIDE_CHUNK classes
    sim, weights = router(image_feats, None, side=sides)        # scored chunk by chunk (memory flat in C)

The router is the multi-head attention of the reference code (`x_bc = Attn(q=f_b, k=v=E_c)`, parameters in an
`nn.MultiheadAttention`, same state_dict keys) computed without repeating queries per class or keys per image:
the key/value projections of every description are one matmul per call, the output projection is folded into the
class side (a per-class Gram matrix), and cos(f_b, x_bc) is assembled from dot products and that Gram matrix, so
the (B, C, d) routed features are never materialised. The arithmetic and its hand-written backward live in
pipeline/model/router_kernel.py. `naive_router` is the reference formulation, kept for tests and benchmarks.

Beyond the reference code (each one param away from it): the attention logits are multiplied by an inverse
temperature t = exp(log_scale) (learned unless `learn_scale=False`; the parameter is clamped at log 1000 before each
forward, as the logit scale is at log 100), folded into the queries so the kernel is unchanged; the query/key
projections may start at the identity (`qk_init="identity"`: each head's logit starts as t/sqrt(e) times the dot
product of the image's and the description's slices of that head); and `mode="mean"` replaces the attention weights
by the uniform mean over each class's valid descriptions (queries set to zero: every logit is 0), keeping the
value/output projections: the ablation "does routing help?".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.errors import UserError
from pipeline.model.router_kernel import RoutedCosine, RouterStep, class_forward

ROUTER_INITS = ("identity", "pytorch")
ROUTER_MODES = ("attention", "mean")
MAX_ATTENTION_SCALE = 1000.0
SIDE_CHUNK = 1024
"""Classes per chunk of a frozen class side (`Router.class_sides`): a batch of B images is scored one chunk at a
time, so its (h, V, C, B) intermediates never exceed those of C = 1024 (at C = 8,142 and B = 64 the whole class
range would hold ~10 tensors of 83 MB each at once); evaluation also makes each chunk's side only when it scores it
(MDPRModel.side_chunks). benchmarks/eval.py measures the peak."""


@dataclass
class ClassSide:
    """What the router computes from the description library alone (no image): once per training step, or once
    per run when the weights are frozen (`Router.class_side`). Rows of keys_values are ordered (v, c)."""

    keys_values: torch.Tensor       # (VC, 2d) key and value projections of every description, float32 or wider
    gram: torch.Tensor              # (C, hV, hV) Gram matrix of each class's output-projected values u_chv
    bias_dot: torch.Tensor          # (C, hV) u_chv . out_bias
    valid: torch.Tensor | None      # (V, C, 1) True = a valid description


class Router(nn.Module):
    """Image-conditioned multi-head attention over each class's description embeddings.

    init "identity" (default) starts the value and output projections at the identity (biases are zero), so at
    step 0 the routed feature is an attention-weighted mix of the class's descriptions and the semantic branch
    starts as zero-shot classification with the description library, just as the base branch starts from the
    class-name embeddings. "pytorch" keeps nn.MultiheadAttention's own random init throughout (reference code);
    it starts from a random projection: 4.5 points lower val top-1 on the CLIP-like feature import, 1.2 higher on
    the synthetic demo (3 seeds; README, "Official code vs project defaults").
    qk_init "identity" starts the query/key projections at the identity as well (logits start as scaled per-head
    dot products of image and description), "pytorch" keeps PyTorch's Xavier init (reference code), under which the
    logits start near 0 and the weights near uniform.

    `weights` returned by `forward` are the head-averaged attention probabilities *before* attention dropout (a
    distribution over each class's descriptions); the routed features use the dropped-out probabilities, exactly
    like `nn.MultiheadAttention` in training mode.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, init: str = "identity", qk_init: str = "pytorch",
                 scale: float = 1.0, learn_scale: bool = False, mode: str = "attention"):
        super().__init__()
        if dim % heads:
            raise UserError(f"model.heads = {heads} does not divide the feature width {dim}; pick a divisor of {dim}.")
        for name, value, allowed in (("router init", init, ROUTER_INITS), ("router qk init", qk_init, ROUTER_INITS),
                                     ("router", mode, ROUTER_MODES)):
            if value not in allowed:
                raise UserError(f"model: {name} {value!r} is not one of {', '.join(allowed)}.")
        self.heads, self.head_dim, self.dropout, self.mode = heads, dim // heads, dropout, mode
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)), requires_grad=learn_scale)  # log t
        with torch.no_grad():
            if init == "identity":  # value and output projections start as identity: x_bc = routed mix of E_c
                self.attn.in_proj_weight[2 * dim:].copy_(torch.eye(dim))
                self.attn.out_proj.weight.copy_(torch.eye(dim))
            if qk_init == "identity":  # queries and keys start as the features themselves
                self.attn.in_proj_weight[:2 * dim].copy_(torch.eye(dim).repeat(2, 1))

    def query_scale(self) -> torch.Tensor:
        """What multiplies the attention logits: t = exp(log_scale), the parameter clamped in place at log 1000 first
        (the gradient still flows at the bound); 0 with mode "mean" (uniform weights)."""
        with torch.no_grad():
            self.log_scale.clamp_(max=math.log(MAX_ATTENTION_SCALE))
        return self.log_scale.exp() * (self.mode == "attention")

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
        scale = self.query_scale().to(image_feats.dtype) * self.head_dim ** -0.5  # 1/sqrt(e) as nn.MultiheadAttention
        return self._project(image_feats, 0) * scale  # (B, h, e)

    @torch.no_grad()
    def class_side(self, library_feats: torch.Tensor, mask: torch.Tensor | None = None) -> ClassSide:
        """Everything the router computes from the library alone, for frozen weights (no gradients are kept):
        library_feats (C, V, d), mask (C, V)."""
        keys_values, valid = self._keys_values(library_feats, mask)
        with torch.autocast(keys_values.device.type, enabled=False):
            out_weight, out_bias = self._out_projection(keys_values.dtype)
            gram, bias_dot, _ = class_forward(keys_values, out_weight, out_bias, self.heads, library_feats.shape[0],
                                              keep=False)
        return ClassSide(keys_values, gram, bias_dot, valid)

    def class_sides(self, library_feats: torch.Tensor, mask: torch.Tensor | None = None,
                    chunk: int | None = None) -> list[ClassSide]:
        """`class_side` of consecutive chunks of `chunk` (default SIDE_CHUNK) classes, in class order (one chunk when
        C <= chunk)."""
        chunk = chunk or SIDE_CHUNK
        return [self.class_side(library_feats[start:start + chunk], None if mask is None else mask[start:start + chunk])
                for start in range(0, library_feats.shape[0], chunk)]

    def forward(self, image_feats: torch.Tensor, library_feats: torch.Tensor | None, mask: torch.Tensor | None = None,
                side: ClassSide | list[ClassSide] | None = None):
        """image_feats (B, d), library_feats (C, V, d), mask (C, V) True = valid -> sim (B, C), weights (B, C, V).

        `side` (from `class_side`, same weights) replaces library_feats and mask: per batch, only the image side; a
        list (from `class_sides`) is scored chunk by chunk and the chunks' outputs joined along C."""
        if isinstance(side, list):
            outputs = [self(image_feats, None, side=chunk) for chunk in side]
            return torch.cat([sim for sim, _ in outputs], 1), torch.cat([weights for _, weights in outputs], 1)
        keys_values, valid = (side.keys_values, side.valid) if side is not None else \
            self._keys_values(library_feats, mask)
        dtype = keys_values.dtype
        with torch.autocast(image_feats.device.type, enabled=False):
            out_weight, out_bias = self._out_projection(dtype)
            feats = image_feats.to(dtype)
            query_image = torch.cat([self._queries(feats).flatten(1), feats @ out_weight], dim=1)  # (B, 2d)
            if side is None:  # training: class side and image side in one autograd node
                sim, weights = RouterStep.apply(query_image, feats, keys_values, out_weight, out_bias, valid,
                                                self.dropout, self.training, self.heads, library_feats.shape[0])
            else:
                sim, weights = RoutedCosine.apply(query_image, feats, keys_values, side.gram, side.bias_dot,
                                                  out_bias, valid, self.dropout, self.training, self.heads)
        return sim.t(), weights.permute(2, 1, 0)  # (C, B) -> (B, C); (V, C, B) -> (B, C, V)

    def _keys_values(self, library_feats: torch.Tensor, mask: torch.Tensor | None):
        """Key and value projections of every description (VC, 2d), rows ordered (v, c), at least float32; the
        mask as (V, C, 1). Under bf16 autocast the projection itself runs in bf16."""
        classes, views, dim = library_feats.shape
        rows = library_feats.transpose(0, 1).reshape(views * classes, dim)  # (VC, d), description-major
        keys_values = F.linear(rows, self.attn.in_proj_weight[dim:], self.attn.in_proj_bias[dim:])  # (VC, 2d)
        valid = None if mask is None else mask.t().to(library_feats.device)[..., None]  # (V, C, 1)
        return _at_least_float32(keys_values), valid

    def _out_projection(self, dtype: torch.dtype):
        return self.attn.out_proj.weight.to(dtype), self.attn.out_proj.bias.to(dtype)

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


def _at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def naive_router(attn: nn.MultiheadAttention, image_feats: torch.Tensor, library_feats: torch.Tensor,
                 mask: torch.Tensor | None = None, query_scale: torch.Tensor | float = 1.0):
    """Reference formulation: B*C sequences (query repeated per class, keys per image) -> sim, weights, routed.

    Returns sim (B, C), head-averaged weights (B, C, V) and the routed features (B, C, d). In training mode the
    weights are after dropout, as nn.MultiheadAttention returns them. `query_scale` (Router.query_scale()) multiplies
    the attention logits: applied to the query projection's weight and bias, so `attn` itself runs unchanged.
    """
    (batch, dim), (classes, views, _) = image_feats.shape, library_feats.shape
    queries = image_feats[:, None, None, :].expand(batch, classes, 1, dim).reshape(batch * classes, 1, dim)
    library = library_feats[None].expand(batch, classes, views, dim).reshape(batch * classes, views, dim)
    padding = None if mask is None else ~mask[None].expand(batch, classes, views).reshape(batch * classes, views)
    factor = torch.ones(3 * dim, dtype=image_feats.dtype, device=image_feats.device)
    factor = torch.cat([factor[:dim] * query_scale, factor[dim:]])  # (3d,): t on the query rows
    scaled = {"in_proj_weight": attn.in_proj_weight * factor[:, None], "in_proj_bias": attn.in_proj_bias * factor}
    routed, weights = torch.func.functional_call(attn, scaled, (queries, library, library),
                                                 {"key_padding_mask": padding, "need_weights": True})
    routed = routed.reshape(batch, classes, dim)  # (B, C, d)
    sim = F.cosine_similarity(image_feats[:, None, :], routed, dim=-1)  # (B, C)
    return sim, weights.reshape(batch, classes, views), routed
