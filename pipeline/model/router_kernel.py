"""The router's arithmetic with hand-written backward passes: large matmuls, few passes over (h, V, C, B) data.

    sim, weights = RouterStep.apply(query_image, image_feats, keys_values, out_weight, out_bias, valid,
                                    dropout, training, heads, classes)      # training: both sides, one backward
    gram, bias_dot, _ = class_forward(keys_values, out_weight, out_bias, heads, classes)   # frozen: once per run
    sim, weights = RoutedCosine.apply(query_image, image_feats, keys_values, gram, bias_dot, out_bias, valid,
                                      0.0, False, heads)                    # then per batch: the image side only

Notation: B images, C classes, V descriptions per class, h heads of width e, d = h e. Inputs: query_image (B, 2d)
= [scaled queries | W_out^T f] per image, keys_values (VC, 2d) the key and value projections of every description
with rows ordered (v, c), valid (V, C, 1) or None. Outputs: sim (C, B) = cos(f_b, x_bc) and weights (V, C, B),
the head-averaged attention weights before dropout. With a = the attention weights after dropout, (h, V) per pair:
    x_bc = sum_{h,v} a_bchv u_chv + out_bias,   u_chv = W_out[:, h] value_chv        (output projection folded in)
    f . x_bc = sum_{h,v} a_bchv (W_out[:, h]^T f_b) . value_chv + f . out_bias
    |x_bc|^2 = a^T G_c a + 2 a . (u_c out_bias) + |out_bias|^2,   G_c = u_c u_c^T (hV x hV, symmetric)
so no (B, C, d) tensor is made. Description-major rows put the image index innermost in every (h, V, C, B) tensor:
the softmax over V, the sums and the one layout change to (C, hV, B) (for G a) move contiguous runs of B floats.
Per-head products are batched matmuls (one call each: steadier than loops of small calls when threads are
contended), and no tensor is large enough to be mapped fresh from the OS at every step. The backward
reuses what the forward kept (G a + u out_bias, a, the probabilities) and the symmetry of G (d(a^T G a)/da = 2 G a;
dG is symmetric, so du = 2 dG u). Matmul FLOPs (2 x multiply-adds) are counted in benchmarks/router.py.
"""
from __future__ import annotations

import torch

EPS = 1e-8  # floor on vector norms in cosines, as in F.cosine_similarity


CHUNK_BYTES = 16 * 2 ** 20
"""The output-projected values u of this many bytes' worth of classes are made at a time (one tensor per chunk):
blocks of this size stay in the cache and come from the allocator's heap; one tensor for all classes would be
mapped fresh from the OS (page faults) at every step."""


def class_forward(keys_values, out_weight, out_bias, heads: int, classes: int, keep: bool = True):
    """gram (C, hV, hV) rows ordered (h, v), bias_dot (C, hV) = u . out_bias, and what the backward needs (the u of
    every chunk; `keep=False`, frozen weights: none of them, so only one chunk of u is alive at a time)."""
    rows, dim = len(keys_values), out_weight.shape[0]
    views, width = rows // classes, dim // heads
    slots = heads * views
    values = keys_values[:, dim:].view(views, classes, heads, width).permute(2, 0, 1, 3).contiguous()  # (h, V, C, e)
    slot_weight = _slot_weight(out_weight, heads, views).transpose(1, 2)  # (hV, e, d): W_out[:, h]^T per slot
    gram = keys_values.new_empty(classes, slots, slots)
    outputs = []  # u per chunk of classes: (hV, c, d)
    for start, stop in _chunks(classes, slots * dim * values.element_size()):
        chunk = torch.bmm(values[:, :, start:stop].view(slots, stop - start, width), slot_weight)  # (hV, c, d)
        by_class = chunk.transpose(0, 1)  # (c, hV, d), a strided view
        torch.bmm(by_class, by_class.transpose(1, 2), out=gram[start:stop])
        if keep:
            outputs.append(chunk)
    bias_out = (out_bias @ out_weight).view(heads, 1, 1, width)  # W_out[:, h]^T out_bias
    bias_dot = (values * bias_out).sum(-1).view(slots, classes).t()  # (C, hV)
    return gram, bias_dot, (values, bias_out, *outputs)


def class_backward(saved, out_weight, out_bias, grad_gram, grad_bias_dot, grad_keys_values, heads: int):
    """Adds d/d values into grad_keys_values[:, d:] in place; returns (grad out_weight, grad out_bias)."""
    values, bias_out, *outputs = saved
    (_, views, classes, width), dim = values.shape, out_weight.shape[0]
    slots = heads * views
    slot_weight = _slot_weight(out_weight, heads, views)  # (hV, d, e)
    symmetric = grad_gram + grad_gram.transpose(1, 2)  # (C, hV, hV)
    grad_dot = grad_bias_dot.t().reshape(heads, views, classes, 1)  # d bias_dot as (h, V, C, 1)
    grad_values = grad_dot * bias_out  # (h, V, C, e): d values, starting with the part through bias_dot
    grad_bias_out = (grad_dot * values).sum((1, 2)).reshape(dim)  # (d,)
    grad_weight = out_weight.new_zeros(slots, dim, width)
    for (start, stop), chunk in zip(_chunks(classes, slots * dim * values.element_size()), outputs):
        per_slot = torch.bmm(symmetric[start:stop], chunk.transpose(0, 1)).transpose(0, 1)  # (hV, c, d): du
        grad_values[:, :, start:stop].view(slots, stop - start, width).baddbmm_(per_slot, slot_weight)
        grad_weight.baddbmm_(per_slot.transpose(1, 2), values[:, :, start:stop].view(slots, stop - start, width))
    grad_keys_values[:, dim:].view(views, classes, heads, width).add_(grad_values.permute(1, 2, 0, 3))
    grad_weight = grad_weight.view(heads, views, dim, width).sum(1).transpose(0, 1).reshape(dim, dim)
    return grad_weight + torch.outer(out_bias, grad_bias_out), out_weight @ grad_bias_out


def _slot_weight(out_weight: torch.Tensor, heads: int, views: int) -> torch.Tensor:
    """W_out[:, h] (d, e) for every (head, description) slot: (hV, d, e)."""
    weight = out_weight.view(out_weight.shape[0], heads, -1).transpose(0, 1)  # (h, d, e)
    return weight[:, None].expand(heads, views, *weight.shape[1:]).reshape(heads * views, *weight.shape[1:])


def _chunks(classes: int, bytes_per_class: int) -> list[tuple[int, int]]:
    """(start, stop) ranges of classes, each at most CHUNK_BYTES of bytes_per_class (at least one class)."""
    step = max(1, CHUNK_BYTES // bytes_per_class)
    return [(start, min(start + step, classes)) for start in range(0, classes, step)]


def image_forward(query_image, image_feats, keys_values, gram, bias_dot, out_bias, valid, dropout: float,
                  training: bool, heads: int):
    """sim (C, B), weights (V, C, B), and what the backward needs."""
    batch, classes = len(query_image), gram.shape[0]
    views = len(keys_values) // classes
    key_rows, columns = _head_rows(keys_values, heads), _head_cols(query_image, heads)  # (2h, VC, e), (2h, e, B)
    scores, image_dot = (torch.bmm(key_rows[part], columns[part]).view(heads, views, classes, batch)
                         for part in (slice(0, heads), slice(heads, None)))  # (h, V, C, B): q . k, (W_out^T f) . v
    if valid is not None:
        scores.masked_fill_(~valid, float("-inf"))
    probs = torch.softmax(scores, dim=1)  # over the V descriptions
    keep = None
    if training and dropout > 0:
        keep = torch.empty_like(probs).bernoulli_(1 - dropout).div_(1 - dropout)  # (h, V, C, B)
    mixing = probs * keep if keep is not None else probs
    dot = (mixing * image_dot).sum((0, 1)) + image_feats @ out_bias  # (C, B): f . x_bc
    mixing = mixing.permute(2, 0, 1, 3).reshape(classes, heads * views, batch)  # (C, hV, B)
    half_grad = torch.bmm(gram, mixing).add_(bias_dot[..., None])  # (C, hV, B): G a + u . out_bias
    sq_norm = (mixing * half_grad).sum(1) + (bias_dot[:, None] @ mixing)[:, 0] + out_bias @ out_bias  # (C, B)
    routed_norm = sq_norm.clamp_min(0).sqrt().clamp_min(EPS)  # (C, B)
    image_norm = image_feats.norm(dim=-1).clamp_min(EPS)  # (B,)
    sim = dot / (routed_norm * image_norm)
    saved = (query_image, image_feats, keys_values, out_bias, probs, keep, image_dot, mixing, half_grad, sq_norm,
             routed_norm, image_norm, sim)
    return sim, probs.mean(0), saved


def image_backward(saved, grad_sim, grad_weights, heads: int):
    """Gradients of (query_image, image_feats, keys_values, gram, bias_dot, out_bias) from those of sim, weights."""
    (query_image, image_feats, keys_values, out_bias, probs, keep, image_dot, mixing, half_grad, sq_norm,
     routed_norm, image_norm, sim) = saved
    heads, views, classes, batch = probs.shape
    grad_sim = grad_sim if grad_sim is not None else torch.zeros_like(sim)
    grad_dot = grad_sim / (routed_norm * image_norm)  # (C, B)
    grad_sq = (-0.5 * grad_sim * sim / routed_norm ** 2).masked_fill_(sq_norm <= EPS ** 2, 0)  # where no floor acts
    grad_image_norm = -(grad_sim * sim).sum(0) / image_norm  # (B,)
    grad_feats = ((grad_image_norm / image_norm).masked_fill(image_norm <= EPS, 0)[:, None] * image_feats
                  + grad_dot.sum(0)[:, None] * out_bias)
    grad_out_bias = image_feats.t() @ grad_dot.sum(0) + 2 * grad_sq.sum() * out_bias
    weighted = mixing * grad_sq[:, None, :]  # (C, hV, B)
    grad_gram = torch.bmm(weighted, mixing.transpose(1, 2))  # (C, hV, hV)
    grad_bias_dot = 2 * weighted.sum(-1)  # (C, hV)
    grad_image_dot = mixing.view(classes, heads, views, batch).permute(1, 2, 0, 3) * grad_dot  # (h, V, C, B)
    grad_probs = (image_dot * grad_dot).addcmul_(half_grad.view(classes, heads, views, batch).permute(1, 2, 0, 3),
                                                 2 * grad_sq)  # (h, V, C, B)
    if keep is not None:
        grad_probs *= keep
    if grad_weights is not None:
        grad_probs += grad_weights / heads
    grad_probs -= (probs * grad_probs).sum(1, keepdim=True)
    grad_scores = grad_probs.mul_(probs)  # softmax backward; 0 where masked (probs = 0)
    key_rows, columns = _head_rows(keys_values, heads), _head_cols(query_image, heads)  # (2h, VC, e), (2h, e, B)
    grad_columns = columns.new_empty(columns.shape)  # (2h, e, B), contiguous: bmm writes it directly
    grad_keys_values = torch.empty_like(keys_values)  # (VC, 2d)
    for part, grad in ((slice(0, heads), grad_scores), (slice(heads, None), grad_image_dot)):
        grad = grad.view(heads, views * classes, batch)  # (h, VC, B)
        torch.bmm(key_rows[part].transpose(1, 2), grad, out=grad_columns[part])
        _head_rows(grad_keys_values, heads)[part].copy_(torch.bmm(grad, columns[part].transpose(1, 2)))
    grad_query_image = grad_columns.permute(2, 0, 1).reshape(query_image.shape)
    return grad_query_image, grad_feats, grad_keys_values, grad_gram, grad_bias_dot, grad_out_bias


class RouterStep(torch.autograd.Function):
    """Both sides in one autograd node (training): one gradient for keys_values, no intermediate graph."""

    @staticmethod
    def forward(ctx, query_image, image_feats, keys_values, out_weight, out_bias, valid, dropout: float,
                training: bool, heads: int, classes: int):
        gram, bias_dot, class_saved = class_forward(keys_values, out_weight, out_bias, heads, classes)
        sim, weights, image_saved = image_forward(query_image, image_feats, keys_values, gram, bias_dot, out_bias,
                                                  valid, dropout, training, heads)
        _save(ctx, out_weight, *image_saved, *class_saved)
        ctx.heads, ctx.image_count = heads, len(image_saved)
        return sim, weights

    @staticmethod
    def backward(ctx, grad_sim, grad_weights):
        out_weight, *saved = _saved(ctx)
        image_saved, class_saved = saved[:ctx.image_count], saved[ctx.image_count:]
        out_bias = image_saved[3]
        grad_query, grad_feats, grad_keys_values, grad_gram, grad_bias_dot, grad_out_bias = image_backward(
            image_saved, grad_sim, grad_weights, ctx.heads)
        grad_out_weight, grad_bias_more = class_backward(class_saved, out_weight, out_bias, grad_gram, grad_bias_dot,
                                                         grad_keys_values, ctx.heads)
        return (grad_query, grad_feats, grad_keys_values, grad_out_weight, grad_out_bias + grad_bias_more,
                None, None, None, None, None)


class RoutedCosine(torch.autograd.Function):
    """The image side alone, on a class side computed beforehand (`class_forward`): per batch of a frozen model."""

    @staticmethod
    def forward(ctx, query_image, image_feats, keys_values, gram, bias_dot, out_bias, valid, dropout: float,
                training: bool, heads: int):
        sim, weights, saved = image_forward(query_image, image_feats, keys_values, gram, bias_dot, out_bias, valid,
                                            dropout, training, heads)
        _save(ctx, *saved)
        ctx.heads = heads
        return sim, weights

    @staticmethod
    def backward(ctx, grad_sim, grad_weights):
        return (*image_backward(_saved(ctx), grad_sim, grad_weights, ctx.heads), None, None, None, None)


def _save(ctx, *tensors) -> None:
    """save_for_backward with None entries allowed (no dropout: no mask); unused outputs get no zero gradient."""
    ctx.save_for_backward(*[t for t in tensors if t is not None])
    ctx.missing = [index for index, t in enumerate(tensors) if t is None]
    ctx.set_materialize_grads(False)


def _saved(ctx) -> list:
    saved = list(ctx.saved_tensors)
    for index in ctx.missing:
        saved.insert(index, None)
    return saved


def _head_rows(keys_values: torch.Tensor, heads: int) -> torch.Tensor:
    """(VC, 2d) -> (2h, VC, e): key heads then value heads, each a strided (VC, e) matrix."""
    return keys_values.view(len(keys_values), 2 * heads, -1).transpose(0, 1)


def _head_cols(query_image: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, 2d) -> (2h, e, B): query heads then image-out heads, transposed views."""
    return query_image.view(len(query_image), 2 * heads, -1).permute(1, 2, 0)
