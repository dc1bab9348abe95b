"""The router's options beyond the reference code: the learned attention scale, the identity query/key init, the
`mean` ablation and the raw (official) keys; each against the naive nn.MultiheadAttention form or a hand computation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.config.model_params import ModelParams
from pipeline.core.errors import UserError
from pipeline.model.mdpr import MDPRModel
from pipeline.model.router import MAX_ATTENTION_SCALE, Router, naive_router

B, C, V, D, HEADS = 5, 6, 4, 16, 4


def _inputs(dtype=torch.float32):
    gen = torch.Generator().manual_seed(3)
    image = F.normalize(torch.randn(B, D, generator=gen, dtype=dtype), dim=-1)
    library = F.normalize(torch.randn(C, V, D, generator=gen, dtype=dtype), dim=-1)
    mask = torch.rand(C, V, generator=gen) > 0.3
    mask[:, 1] = True
    return image, library, mask


def test_identity_qk_init_gives_scaled_per_head_dot_products():
    image, library, _ = _inputs()
    router = Router(D, HEADS, qk_init="identity", scale=7.0, learn_scale=True).eval()
    _, weights = router(image, library)
    width = D // HEADS
    dots = torch.einsum("bhe,cvhe->bchv", image.view(B, HEADS, width), library.view(C, V, HEADS, width))
    expected = (7.0 * dots / math.sqrt(width)).softmax(-1).mean(2)  # (B, C, V), head-averaged
    torch.testing.assert_close(weights, expected, atol=1e-6, rtol=0)
    assert router.log_scale.requires_grad and router.log_scale.item() == pytest.approx(math.log(7.0))


def test_pytorch_qk_init_leaves_weights_nearly_flat_and_identity_does_not():
    image, library, _ = _inputs()
    spread = {}
    for qk_init in ("pytorch", "identity"):
        torch.manual_seed(0)
        _, weights = Router(D, HEADS, qk_init=qk_init, scale=10.0).eval()(image, library)
        spread[qk_init] = (weights - 1 / V).abs().max().item()
    assert spread["pytorch"] < 0.1 < spread["identity"]


def test_learned_scale_gets_a_gradient_and_is_clamped_in_place():
    image, library, mask = _inputs()
    router = Router(D, HEADS, qk_init="identity", scale=3.0, learn_scale=True)
    sim, weights = router(image, library, mask)
    (sim.sum() + weights.pow(2).sum()).backward()
    assert router.log_scale.grad is not None and router.log_scale.grad.abs() > 0
    fixed = Router(D, HEADS, scale=3.0)
    assert not fixed.log_scale.requires_grad  # learn_scale=False: a constant (the official logits have t = 1)
    with torch.no_grad():
        router.log_scale.fill_(math.log(5000.0))
    assert router.query_scale().item() == pytest.approx(MAX_ATTENTION_SCALE)
    assert router.log_scale.item() == pytest.approx(math.log(MAX_ATTENTION_SCALE))  # the parameter itself


def test_mean_router_weighs_every_valid_description_equally_and_keeps_projections():
    image, library, mask = _inputs()
    torch.manual_seed(1)
    router = Router(D, HEADS, init="pytorch", mode="mean").eval()
    sim, weights = router(image, library, mask)
    uniform = (mask / mask.sum(1, keepdim=True)).expand(B, C, V)
    torch.testing.assert_close(weights, uniform, atol=1e-6, rtol=0)
    mixed = torch.einsum("cv,cvd->cd", uniform[0], library)  # the uniform mean of each class's descriptions
    routed = router.attn.out_proj(F.linear(mixed, router.attn.in_proj_weight[2 * D:], router.attn.in_proj_bias[2 * D:]))
    torch.testing.assert_close(sim, F.cosine_similarity(image[:, None], routed[None], dim=-1), atol=1e-5, rtol=0)


def _norms():
    return 1 + 4 * torch.rand(C, V, generator=torch.Generator().manual_seed(4))  # (C, V) in [1, 5)


def test_raw_keys_route_over_the_unnormalised_descriptions_and_match_naive():
    image, library, mask = _inputs()
    params = ModelParams(heads=HEADS, router_keys="raw", router_init="pytorch", dropout=0.0)
    model = MDPRModel(library[:, 0], library, mask, params, seed=0, library_norms=_norms()).eval()
    raw = library * _norms()[..., None]  # (C, V, d): what the official code feeds as keys and values
    out = model(image)
    ref_sim, ref_weights, _ = naive_router(model.router.attn, image, raw, mask, model.router.query_scale())
    torch.testing.assert_close(out["sem"], model.scale() * ref_sim, atol=1e-4, rtol=0)
    torch.testing.assert_close(out["weights"], ref_weights, atol=1e-5, rtol=0)
    normalised = MDPRModel(library[:, 0], library, mask, ModelParams(heads=HEADS, router_init="pytorch"), seed=0,
                           library_norms=_norms()).eval()
    assert not torch.allclose(normalised(image)["weights"], out["weights"], atol=1e-3)  # the norms change routing
    torch.testing.assert_close(normalised.description_means(), model.description_means())  # baselines: normalised


def test_raw_keys_without_norms_are_refused_in_one_line():
    _, library, mask = _inputs()
    with pytest.raises(UserError, match="router_keys = raw needs .* norm.*embed-library") as err:
        MDPRModel(library[:, 0], library, mask, ModelParams(heads=HEADS, router_keys="raw"))
    assert "\n" not in str(err.value)


def test_router_options_keep_nn_multihead_attention_state_dict_keys():
    keys = set(Router(D, HEADS, qk_init="identity", learn_scale=True, mode="mean").state_dict())
    assert keys == {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
                    "log_scale"}
