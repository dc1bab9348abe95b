"""The router's arithmetic with hand-written backward passes: big batched matmuls, few passes over (C, hV, .) data.

    gram = OutputGram.apply(values, out_weight, heads)            # (C, hV, hV): class side, once per step or run
    sim, weights = RoutedCosine.apply(queries_and_image_out, image_feats, keys_values, gram, bias_dot, out_bias,
                                      valid, dropout, training, heads)    # (C, B) cosines, (V, C, B) weights

Notation: B images, C classes, V descriptions per class, h heads of width e, d = h e. Class-side rows are ordered
(v, c) (description-major), so scores come out of one batched matmul as (h, V, C, B) with the image index
innermost: the softmax over V, the dot products and the layout change to (C, hV, B) all move runs of B floats.

For image b and class c (a = attention weights after dropout, (h, V) per pair, flattened to hV):
    x_bc = sum_{h,v} a_bchv u_chv + out_bias,   u_chv = W_out[:, h] value_chv        (output projection folded in)
    f . x_bc = sum_{h,v} a_bchv (W_out[:, h]^T f_b) . value_chv + f . out_bias
    |x_bc|^2 = a^T G_c a + 2 a . (u_c out_bias) + |out_bias|^2,   G_c = u_c u_c^T (hV x hV, symmetric)
so sim = cos(f_b, x_bc) needs no (B, C, d) tensor. The backward reuses what the forward kept (G a, a, the
probabilities) and exploits the symmetry of G (d(a^T G a)/da = 2 G a; dG is symmetric, so du = 2 dG u).
FLOPs per call (multiply-adds x 2): forward 2 x 2 h B V C e (scores and f . u) + 2 C B (hV)^2 (G a); backward
twice the score matmuls + 2 C B (hV)^2 (dG); OutputGram: forward 2 C V h e d (u) + 2 C (hV)^2 d (G), backward
2 C (hV)^2 d (dG u) + 2 x 2 C V h e d (d values, d W_out).
"""
from __future__ import annotations

import torch

EPS = 1e-8  # floor on vector norms in cosines, as in F.cosine_similarity


class OutputGram(torch.autograd.Function):
    """G_c = u_c u_c^T (C, hV, hV), rows ordered (h, v), of u_chv = W_out[:, h] value_chv; u is kept for backward.

    values (VC, h, e) rows ordered (v, c), out_weight (d, d) -> gram (C, hV, hV).
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, out_weight: torch.Tensor, classes: int):
        rows, heads, width = values.shape
        views = rows // classes
        outputs = torch.bmm(values.transpose(0, 1), _per_head(out_weight, heads).transpose(1, 2))  # (h, VC, d)
        by_class = outputs.view(heads * views, classes, -1).transpose(0, 1)  # (C, hV, d), a strided view
        ctx.save_for_backward(values, out_weight, outputs)
        ctx.classes = classes
        return torch.bmm(by_class, by_class.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad_gram: torch.Tensor):
        values, out_weight, outputs = ctx.saved_tensors
        rows, heads, width = values.shape
        classes, views = ctx.classes, rows // ctx.classes
        by_class = outputs.view(heads * views, classes, -1).transpose(0, 1)  # (C, hV, d)
        grad_outputs = torch.bmm(grad_gram + grad_gram.transpose(1, 2), by_class)  # (C, hV, d)
        per_slot = grad_outputs.transpose(0, 1)  # (hV, C, d): one (C, d) matrix per (head, description) slot
        weight = _per_head(out_weight, heads)  # (h, d, e)
        slot_weight = weight[:, None].expand(heads, views, *weight.shape[1:]).reshape(heads * views, -1, width)
        grad_values = torch.bmm(per_slot, slot_weight)  # (hV, C, e)
        grad_values = grad_values.view(heads, views, classes, width).permute(1, 2, 0, 3).reshape(rows, heads, width)
        slot_values = values.view(views, classes, heads, width).permute(2, 0, 1, 3).reshape(heads * views, classes,
                                                                                           width)  # (hV, C, e)
        grad_weight = torch.bmm(per_slot.transpose(1, 2), slot_values)  # (hV, d, e)
        grad_weight = grad_weight.view(heads, views, -1, width).sum(1).transpose(0, 1).reshape(out_weight.shape)
        return grad_values, grad_weight, None


def _per_head(out_weight: torch.Tensor, heads: int) -> torch.Tensor:
    """W_out (d, d) -> its column blocks (h, d, e): W_out[:, h]."""
    return out_weight.view(out_weight.shape[0], heads, -1).transpose(0, 1)


class RoutedCosine(torch.autograd.Function):
    """cos(f_b, x_bc) and the head-averaged attention weights, from the class side and the image side.

    query_image (B, 2d): [scaled queries | W_out^T f] per image; image_feats (B, d); keys_values (VC, 2d) rows
    (v, c); gram (C, hV, hV); bias_dot (C, hV) = u . out_bias; out_bias (d,); valid (V, C, 1) bool or None ->
    sim (C, B), weights (V, C, B) (before dropout). All floating inputs share one dtype (float32 or float64).
    """

    @staticmethod
    def forward(ctx, query_image, image_feats, keys_values, gram, bias_dot, out_bias, valid, dropout: float,
                training: bool, heads: int):
        batch, classes = len(query_image), gram.shape[0]
        views = len(keys_values) // classes
        paired = torch.bmm(_head_rows(keys_values, heads), _head_cols(query_image, heads))  # (2h, VC, B)
        scores, image_dot = paired.view(2, heads, views, classes, batch).unbind(0)  # (h, V, C, B) each
        if valid is not None:
            scores.masked_fill_(~valid, float("-inf"))
        probs = scores.sub_(scores.amax(1, keepdim=True)).exp_()
        probs /= probs.sum(1, keepdim=True)  # softmax over the V descriptions, in place
        keep = None
        if training and dropout > 0:
            keep = torch.empty_like(probs).bernoulli_(1 - dropout).div_(1 - dropout)  # (h, V, C, B)
        mixing = probs * keep if keep is not None else probs
        dot = (mixing * image_dot).sum((0, 1)) + image_feats @ out_bias  # (C, B): f . x_bc
        mixing = mixing.permute(2, 0, 1, 3).reshape(classes, heads * views, batch)  # (C, hV, B)
        gram_mix = torch.bmm(gram, mixing)  # (C, hV, B): G a (G symmetric)
        sq_norm = (mixing * (gram_mix + 2 * bias_dot[..., None])).sum(1) + out_bias @ out_bias  # (C, B)
        routed_norm = sq_norm.clamp_min(0).sqrt().clamp_min(EPS)  # (C, B)
        image_norm = image_feats.norm(dim=-1).clamp_min(EPS)  # (B,)
        sim = dot / (routed_norm * image_norm)
        ctx.save_for_backward(query_image, image_feats, keys_values, gram, bias_dot, out_bias, probs, keep,
                              image_dot, mixing, gram_mix, sq_norm, routed_norm, image_norm, sim)
        ctx.heads = heads
        return sim, probs.mean(0)

    @staticmethod
    def backward(ctx, grad_sim, grad_weights):
        (query_image, image_feats, keys_values, gram, bias_dot, out_bias, probs, keep, image_dot, mixing, gram_mix,
         sq_norm, routed_norm, image_norm, sim) = ctx.saved_tensors
        heads, (classes, slots, batch) = ctx.heads, mixing.shape
        views = slots // heads
        grad_sim = grad_sim if grad_sim is not None else torch.zeros_like(sim)
        grad_dot = grad_sim / (routed_norm * image_norm)  # (C, B)
        grad_sq = -grad_sim * sim / routed_norm / (2 * routed_norm)  # through |x| = sqrt(sq) ...
        grad_sq = grad_sq.masked_fill_(sq_norm <= EPS ** 2, 0)  # ... where the floors are not active
        grad_image_norm = -(grad_sim * sim).sum(0) / image_norm  # (B,)
        grad_feats = ((grad_image_norm / image_norm).masked_fill(image_norm <= EPS, 0)[:, None] * image_feats
                      + grad_dot.sum(0)[:, None] * out_bias)
        grad_out_bias = image_feats.t() @ grad_dot.sum(0) + 2 * grad_sq.sum() * out_bias
        weighted = mixing * grad_sq[:, None, :]  # (C, hV, B)
        grad_gram = torch.bmm(weighted, mixing.transpose(1, 2))  # (C, hV, hV)
        grad_bias_dot = 2 * weighted.sum(-1)  # (C, hV)
        grad_mixing = (2 * grad_sq[:, None, :]) * (gram_mix + bias_dot[..., None])  # (C, hV, B)
        grad_mixing = grad_mixing.view(classes, heads, views, batch).permute(1, 2, 0, 3)  # (h, V, C, B)
        grad_mixing = grad_mixing + grad_dot * image_dot
        grad_paired = torch.empty(2, heads, views, classes, batch, dtype=probs.dtype, device=probs.device)
        torch.mul(mixing.view(classes, heads, views, batch).permute(1, 2, 0, 3), grad_dot, out=grad_paired[1])
        grad_probs = grad_mixing * keep if keep is not None else grad_mixing
        if grad_weights is not None:
            grad_probs = grad_probs + grad_weights / heads
        grad_probs -= (probs * grad_probs).sum(1, keepdim=True)
        torch.mul(probs, grad_probs, out=grad_paired[0])  # softmax backward; 0 where masked (probs = 0)
        grad_paired = grad_paired.view(2 * heads, views * classes, batch)
        key_rows = _head_rows(keys_values, heads)  # (2h, VC, e)
        grad_query_image = torch.bmm(key_rows.transpose(1, 2), grad_paired)  # (2h, e, B)
        grad_query_image = grad_query_image.permute(2, 0, 1).reshape(query_image.shape)
        grad_keys_values = torch.bmm(grad_paired, _head_cols(query_image, heads).transpose(1, 2))  # (2h, VC, e)
        grad_keys_values = grad_keys_values.transpose(0, 1).reshape(keys_values.shape)
        return (grad_query_image, grad_feats, grad_keys_values, grad_gram, grad_bias_dot, grad_out_bias,
                None, None, None, None)


def _head_rows(keys_values: torch.Tensor, heads: int) -> torch.Tensor:
    """(VC, 2d) -> (2h, VC, e): key heads then value heads, each a strided (VC, e) matrix."""
    return keys_values.view(len(keys_values), 2 * heads, -1).transpose(0, 1)


def _head_cols(query_image: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, 2d) -> (2h, e, B): query heads then image-out heads, transposed views."""
    return query_image.view(len(query_image), 2 * heads, -1).permute(1, 2, 0)
