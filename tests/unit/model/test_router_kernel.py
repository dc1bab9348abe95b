"""The router's hand-written backward passes (gradcheck in float64) and the class side computed once for inference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.config.model_params import ModelParams
from pipeline.model import router_kernel
from pipeline.model.inference import infer
from pipeline.model.mdpr import MDPRModel
from pipeline.model.router import Router, naive_router
from pipeline.model.router_kernel import RoutedCosine, RouterStep, class_forward

B, C, V, D, HEADS = 3, 4, 3, 8, 2


def _tensor(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _valid():
    valid = torch.rand(V, C, 1, generator=torch.Generator().manual_seed(8)) > 0.3
    valid[0] = True  # every class keeps a valid description
    return valid


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("chunked", [False, True])
def test_router_step_gradients_with_mask_and_dropout(dropout, chunked, monkeypatch):
    if chunked:  # the class side in chunks of one class (several chunks, as at C = 1000 with real widths)
        monkeypatch.setattr(router_kernel, "CHUNK_BYTES", 2 * HEADS * V * D * 8 - 1)
    inputs = (_tensor(B, 2 * D, seed=3), _tensor(B, D, seed=4), _tensor(V * C, 2 * D, seed=5), _tensor(D, D, seed=1),
              _tensor(D, seed=7))

    def step(*args):
        torch.manual_seed(9)  # the same dropout mask at every call of gradcheck
        return RouterStep.apply(*args, _valid(), dropout, True, HEADS, C)

    assert torch.autograd.gradcheck(step, tuple(t.requires_grad_(True) for t in inputs))


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_image_side_gradients_with_mask_and_dropout(dropout):
    gram_rows = _tensor(C, HEADS * V, D, seed=2)
    inputs = (_tensor(B, 2 * D, seed=3), _tensor(B, D, seed=4), _tensor(V * C, 2 * D, seed=5),
              gram_rows @ gram_rows.transpose(1, 2), _tensor(C, HEADS * V, seed=6), _tensor(D, seed=7))

    def routed(*args):
        torch.manual_seed(9)
        return RoutedCosine.apply(*args, _valid(), dropout, True, HEADS)

    assert torch.autograd.gradcheck(routed, tuple(t.requires_grad_(True) for t in inputs))


@pytest.mark.parametrize("chunked", [False, True])
def test_class_side_matches_its_definition(chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(router_kernel, "CHUNK_BYTES", HEADS * V * D * 8)  # one class per chunk
    keys_values, out_weight, out_bias = _tensor(V * C, 2 * D, seed=5), _tensor(D, D, seed=1), _tensor(D, seed=7)
    gram, bias_dot, _ = class_forward(keys_values, out_weight, out_bias, HEADS, C)
    values = keys_values[:, D:].view(V, C, HEADS, D // HEADS)  # rows (v, c)
    outputs = torch.einsum("vche,dhe->chvd", values, out_weight.view(D, HEADS, D // HEADS))  # (C, h, V, d): u
    outputs = outputs.reshape(C, HEADS * V, D)
    torch.testing.assert_close(gram, outputs @ outputs.transpose(1, 2))
    torch.testing.assert_close(bias_dot, outputs @ out_bias)


def test_router_with_precomputed_class_side_equals_full_forward():
    torch.manual_seed(0)
    router = Router(D, HEADS, dropout=0.3).double().eval()
    image, library = F.normalize(_tensor(B, D, seed=10), dim=-1), F.normalize(_tensor(C, V, D, seed=11), dim=-1)
    mask = torch.ones(C, V, dtype=torch.bool)
    mask[1, 0] = False
    side = router.class_side(library, mask)
    sim, weights = router(image, None, side=side)
    ref_sim, ref_weights, _ = naive_router(router.attn, image, library, mask)
    torch.testing.assert_close(sim, ref_sim, atol=1e-10, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=1e-10, rtol=0)


def test_class_side_in_chunks_scores_like_one_side():
    """Evaluation at large C scores the class side chunk by chunk (Router.class_sides): the same sim and weights."""
    torch.manual_seed(0)
    router = Router(D, HEADS, dropout=0.3).double().eval()
    image, library = F.normalize(_tensor(B, D, seed=10), dim=-1), F.normalize(_tensor(C, V, D, seed=11), dim=-1)
    mask = torch.ones(C, V, dtype=torch.bool)
    mask[-1, 1] = False
    sides = router.class_sides(library, mask, chunk=2)
    assert [len(side.gram) for side in sides] == [2] * (C // 2) + [C % 2] * (C % 2)
    sim, weights = router(image, None, side=sides)
    ref_sim, ref_weights = router(image, None, side=router.class_side(library, mask))
    torch.testing.assert_close(sim, ref_sim, atol=1e-12, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=1e-12, rtol=0)


def test_inference_computes_the_class_side_once_per_call():
    gen = torch.Generator().manual_seed(12)
    class_feats = F.normalize(torch.randn(C, D, generator=gen), dim=-1)
    library = F.normalize(torch.randn(C, V, D, generator=gen), dim=-1)
    model = MDPRModel(class_feats, library, None, ModelParams(heads=HEADS), seed=0)
    with torch.no_grad():
        model.residual.normal_(0, 0.1)  # a trained-looking head: class weights differ from the class features
    feats = F.normalize(torch.randn(10, D, generator=gen), dim=-1)
    calls = []
    class_side = model.router.class_side
    model.router.class_side = lambda *args, **kwargs: calls.append(1) or class_side(*args, **kwargs)
    batches = list(infer(model, feats, batch_size=3, zero_shot=True))
    assert len(batches) == 4 and len(calls) == 1
    model.eval()
    with torch.no_grad():
        reference = model(feats)  # the plain forward: everything recomputed for this batch
    for key in ("base", "sem", "weights"):
        torch.testing.assert_close(torch.cat([out[key] for _rows, out in batches]), reference[key])
    torch.testing.assert_close(torch.cat([out["zero_shot_library"] for _rows, out in batches]),
                               100.0 * feats @ model.description_means().T)
