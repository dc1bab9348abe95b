"""Router equivalence with the reference nn.MultiheadAttention formulation, and the MDPR model's branches."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.config.model_params import ModelParams
from pipeline.core.errors import UserError
from pipeline.model.mdpr import MDPRModel, fuse
from pipeline.model.router import Router, naive_router

B, C, V, D, HEADS = 6, 7, 5, 16, 4


def _router(dtype=torch.float64, dropout=0.0, mode="attention") -> Router:
    """A router with every weight and bias random, the learned attention scale included (so no identity or zero
    hides a folding error)."""
    torch.manual_seed(0)
    router = Router(D, HEADS, dropout, learn_scale=True, mode=mode).to(dtype)
    with torch.no_grad():
        for param in router.parameters():
            param.normal_(0, 0.5)
    return router.eval()


def _inputs(dtype=torch.float64, masked=False):
    gen = torch.Generator().manual_seed(1)
    image = F.normalize(torch.randn(B, D, generator=gen, dtype=dtype), dim=-1)
    library = F.normalize(torch.randn(C, V, D, generator=gen, dtype=dtype), dim=-1)
    mask = None
    if masked:
        mask = torch.rand(C, V, generator=gen) > 0.4
        mask[:, 0] = True  # every class keeps a valid description
        mask[1] = False
        mask[1, 3] = True  # a class with a single valid description, not the first
    return image, library, mask


@pytest.mark.parametrize("masked", [False, True])
def test_router_forward_matches_naive_multihead_attention(masked):
    router, (image, library, mask) = _router(), _inputs(masked=masked)
    sim, weights = router(image, library, mask)
    ref_sim, ref_weights, _ = naive_router(router.attn, image, library, mask, router.query_scale())
    assert sim.shape == (B, C) and weights.shape == (B, C, V)
    torch.testing.assert_close(sim, ref_sim, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=1e-5, rtol=0)
    if masked:
        assert (weights[:, ~mask] == 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, C, dtype=weights.dtype))


@pytest.mark.parametrize("masked", [False, True])
def test_router_backward_matches_naive_multihead_attention(masked):
    router, (image, library, mask) = _router(), _inputs(masked=masked)
    grads = []
    scale = router.query_scale()
    for run in (lambda f: router(f, library, mask), lambda f: naive_router(router.attn, f, library, mask, scale)):
        router.zero_grad()
        feats = image.clone().requires_grad_(True)
        sim, weights = run(feats)[:2]
        upstream = torch.linspace(-1, 1, sim.numel(), dtype=sim.dtype).reshape(sim.shape)
        ((sim * upstream).sum() + (weights * weights).sum()).backward()
        grads.append({"image": feats.grad.clone()} | {n: p.grad.clone() for n, p in router.named_parameters()})
    assert set(grads[0]) == {"image", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                             "attn.out_proj.bias", "log_scale"}
    for name in grads[0]:
        assert grads[0][name].abs().max() > 0, name
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("mode", ["attention", "mean"])
def test_router_matches_naive_in_float32(mode):
    router, (image, library, mask) = _router(torch.float32, mode=mode), _inputs(torch.float32, masked=True)
    sim, weights = router(image, library, mask)
    ref_sim, ref_weights, _ = naive_router(router.attn, image, library, mask, router.query_scale())
    torch.testing.assert_close(sim, ref_sim, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=1e-5, rtol=0)


@pytest.mark.parametrize("masked", [False, True])
def test_routed_features_match_naive(masked):
    router, (image, library, mask) = _router(), _inputs(masked=masked)
    _, _, ref_routed = naive_router(router.attn, image, library, mask, router.query_scale())  # (B, C, d)
    pairs_image = torch.arange(B).repeat_interleave(C)
    pairs_class = torch.arange(C).repeat(B)
    routed = router.routed(image[pairs_image], pairs_class, library, mask)
    torch.testing.assert_close(routed, ref_routed.reshape(B * C, D), atol=1e-5, rtol=0)


def test_router_dropout_only_in_training():
    router, (image, library, _) = _router(torch.float32, dropout=0.5), _inputs(torch.float32)
    eval_sim, eval_weights = router(image, library)
    assert torch.equal(router(image, library)[0], eval_sim)
    router.train()
    torch.manual_seed(3)
    train_sim, train_weights = router(image, library)
    assert not torch.allclose(train_sim, eval_sim, atol=1e-3)
    torch.testing.assert_close(train_weights, eval_weights)  # weights are reported before dropout


def test_router_rejects_heads_that_do_not_divide_width():
    with pytest.raises(UserError, match="heads"):
        Router(10, 4)


@pytest.mark.parametrize("router_init", ["identity", "pytorch"])
def test_identity_init_starts_semantic_branch_at_description_zero_shot(router_init):
    gen = torch.Generator().manual_seed(5)
    class_feats = F.normalize(torch.randn(C, D, generator=gen), dim=-1)
    library = F.normalize(torch.randn(C, V, D, generator=gen), dim=-1)
    image = F.normalize(torch.randn(B, D, generator=gen), dim=-1)
    params = ModelParams(heads=1, dropout=0.0)  # one head: x_bc = sum_v a_bcv E_cv exactly under identity init
    model = MDPRModel(class_feats, library, None, params, seed=0, router_init=router_init).eval()
    out = model(image)
    mixed = torch.einsum("bcv,cvd->bcd", out["weights"], library)  # (B, C, d)
    expected = model.scale() * F.cosine_similarity(image[:, None, :], mixed, dim=-1)
    assert torch.allclose(out["sem"], expected, atol=1e-4) == (router_init == "identity")


def _model(params=ModelParams(heads=HEADS), dtype=torch.float32, **kwargs):
    gen = torch.Generator().manual_seed(2)
    class_feats = F.normalize(torch.randn(C, D, generator=gen), dim=-1).to(dtype)
    library = F.normalize(torch.randn(C, V, D, generator=gen), dim=-1).to(dtype)
    return MDPRModel(class_feats, library, None, params, seed=0, **kwargs)


def test_model_outputs_and_zero_residual_start():
    model = _model().eval()
    image = F.normalize(torch.randn(B, D), dim=-1)
    out = model(image)
    assert out["base"].shape == out["sem"].shape == (B, C) and out["weights"].shape == (B, C, V)
    expected_base = 30.0 * image @ model.class_feats.T  # r = 0 and s = 30 at init
    torch.testing.assert_close(out["base"], expected_base, atol=1e-4, rtol=0)
    sim, _ = model.router(image, model.library_feats, model.library_mask)
    torch.testing.assert_close(out["sem"], 30.0 * sim)
    torch.testing.assert_close(fuse(out["base"], out["sem"], 0.25), 0.25 * out["base"] + 0.75 * out["sem"])


def test_logit_scale_is_learned_in_log_space_and_clamped():
    model = _model(ModelParams(heads=HEADS, logit_scale=50.0))
    assert math.isclose(model.logit_scale.item(), math.log(50.0), rel_tol=1e-6)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(500.0))
    assert model.scale().item() == pytest.approx(100.0, rel=1e-6)


def test_float16_library_is_stored_as_given_and_used_in_float32():
    model16, model32 = _model(dtype=torch.float16), _model(dtype=torch.float32)
    assert model16.library_feats.dtype == torch.float16 and model16.class_feats.dtype == torch.float16
    image = F.normalize(torch.randn(B, D), dim=-1)
    out16, out32 = model16.eval()(image), model32.eval()(image)
    assert out16["sem"].dtype == torch.float32
    torch.testing.assert_close(out16["sem"], out32["sem"], atol=0.05, rtol=0)


def test_adapter_mixes_and_normalises_image_features():
    model = _model(ModelParams(heads=HEADS, adapter=True, adapter_ratio=0.5))
    image = F.normalize(torch.randn(B, D), dim=-1)
    adapted = model.adapt(image)
    expected = F.normalize(0.5 * image + 0.5 * model.adapter(image), dim=-1)
    torch.testing.assert_close(adapted, expected)
    assert not torch.allclose(adapted, image)
    assert _model().adapter is None


def test_default_prior_is_description_class_name_cosine_and_zero_where_masked():
    gen = torch.Generator().manual_seed(4)
    class_feats = F.normalize(torch.randn(C, D, generator=gen), dim=-1)
    library = F.normalize(torch.randn(C, V, D, generator=gen), dim=-1)
    mask = torch.ones(C, V, dtype=torch.bool)
    mask[0, 2] = False
    model = MDPRModel(class_feats, library, mask, ModelParams(heads=HEADS))
    assert model.library_prior[0, 2] == 0
    torch.testing.assert_close(model.library_prior[1], library[1] @ class_feats[1])


def test_model_rejects_mismatched_features_and_empty_classes():
    with pytest.raises(UserError, match="do not match"):
        MDPRModel(torch.randn(C + 1, D), torch.randn(C, V, D), None, ModelParams(heads=HEADS))
    mask = torch.ones(C, V, dtype=torch.bool)
    mask[2] = False
    with pytest.raises(UserError, match="no valid description"):
        MDPRModel(torch.randn(C, D), torch.randn(C, V, D), mask, ModelParams(heads=HEADS))


def test_state_dict_keys_follow_the_reference_layout():
    keys = set(_model().state_dict())
    assert {"router.attn.in_proj_weight", "router.attn.in_proj_bias", "router.attn.out_proj.weight",
            "router.attn.out_proj.bias", "residual", "logit_scale"} <= keys


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_router_under_bf16_autocast_keeps_cosines_accurate():
    router, (image, library, mask) = _router(torch.float32), _inputs(torch.float32, masked=True)
    router, image, library, mask = router.cuda(), image.cuda(), library.cuda(), mask.cuda()
    ref_sim, _, _ = naive_router(router.attn, image, library, mask, router.query_scale())  # float32 reference
    with torch.autocast("cuda", dtype=torch.bfloat16):
        sim, weights = router(image, library, mask)
    assert sim.dtype == torch.float32 and (sim.abs() <= 1 + 1e-3).all()
    torch.testing.assert_close(sim, ref_sim, atol=3e-2, rtol=0)


def test_posthoc_adjustment_subtracts_tau_log_prior_so_rare_classes_gain():
    """fused = w base + (1 - w) sem - tau log prior: with tau != 0 the sign decides whether the tail gains (it must)."""
    from pipeline.model.losses import class_log_prior

    counts = [90, 9, 1]
    log_prior = class_log_prior(counts)  # (C,) log(n_c / sum n)
    base, sem = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[0.0, 1.0, 2.0]])
    fused = fuse(base, sem, 0.75, 1.5, log_prior)
    expected = 0.75 * base + 0.25 * sem - 1.5 * torch.log(torch.tensor(counts) / 100.0)
    torch.testing.assert_close(fused, expected)
    assert fuse(base, sem, 0.75).argmax().item() == 0 and fused.argmax().item() == 2   # the rare class wins
    torch.testing.assert_close(fuse(base, sem, 0.75, 0.0, log_prior), fuse(base, sem, 0.75))
