"""Each official-code choice (the values `mdpr preset reference` sets) against a direct transcription of the official
MDPR code's formula (Sha843/MDPR, "MDPR with Maple/mdpr_clip": loss.py, module_maple.py, main_maple.py), on small
tensors, to 1e-6. The `official_*` functions below are those transcriptions, written the way that code writes them.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config.model_params import ModelParams, TrainParams
from pipeline.model import losses
from pipeline.model.mdpr import MDPRModel
from pipeline.model.router import Router, naive_router
from pipeline.model.training import fit

OFFICIAL = TrainParams(base_loss="ce", tau=1.0, prior_smoothing=1.0, lambda_sem=0.1, sem_warmup="official",
                       pa_pairs="all", ka_dim=128, ka_temperature=2.0, lr_schedule="per_epoch", lr_min=1e-6)
COUNTS = [500, 120, 37, 9, 0]


def official_log_cls_num(cls_num_list):
    """CompensatedCrossEntropy.__init__."""
    cls_num_list = torch.tensor(cls_num_list, dtype=torch.float32) + 1
    cls_num_ratio = cls_num_list / cls_num_list.sum()
    return torch.log(cls_num_ratio)


def official_dynamic_loss_scale(epoch, epochs):
    """MDPRLoss.forward: epoch is 0-based (main_maple.py loops `for epoch in range(args.start_epoch, args.epochs)`)."""
    epoch_progress = epoch / epochs
    return min(1.0, 0.01 + epoch_progress * 0.99)


def official_pa(pa_matrix_finetune, matrix_prior):
    """MDPRLoss.forward, the PA branch: pa_matrix_finetune (B, C, V), matrix_prior (C, V)."""
    pa_matrix_finetune_norm_rows = pa_matrix_finetune / (pa_matrix_finetune.norm(dim=-1, keepdim=True) + 1e-5)
    matrix_prior_norm_rows = matrix_prior / (matrix_prior.norm(dim=-1, keepdim=True) + 1e-5)
    matrix_prior_expanded_norm_rows = matrix_prior_norm_rows.unsqueeze(0).expand_as(pa_matrix_finetune_norm_rows)
    return (1.0 - F.cosine_similarity(pa_matrix_finetune_norm_rows, matrix_prior_expanded_norm_rows, dim=-1)).mean()


def official_ka(x_sem_gt, prompt_sem_cls_gt, ka_projection_layer, ka_temperature):
    """MDPRLoss.forward, the KA branch; x_sem_gt is the routed feature normalised as module_maple.py does."""
    x_sem_norm_gt = x_sem_gt / (x_sem_gt.norm(dim=-1, keepdim=True) + 1e-6)
    projected_x_sem_gt = ka_projection_layer(x_sem_norm_gt)
    projected_prompt_sem_cls_gt = ka_projection_layer(prompt_sem_cls_gt)
    log_p_x_sem_gt = F.log_softmax(projected_x_sem_gt / ka_temperature, dim=-1)
    q_prompt_cls_gt = F.softmax(projected_prompt_sem_cls_gt / ka_temperature, dim=-1)
    return nn.KLDivLoss(reduction="batchmean")(log_p_x_sem_gt, q_prompt_cls_gt.detach())


def test_la_prior_is_log_of_counts_plus_one_over_their_sum():
    torch.testing.assert_close(losses.class_log_prior(COUNTS, OFFICIAL.prior_smoothing), official_log_cls_num(COUNTS),
                               atol=1e-6, rtol=0)
    assert not torch.allclose(losses.class_log_prior(COUNTS, 0.0), official_log_cls_num(COUNTS), atol=1e-3)


def test_semantic_loss_is_compensated_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits, target = 10 * torch.randn(6, len(COUNTS), generator=gen), torch.tensor([0, 1, 2, 3, 4, 4])
    log_cls_num = official_log_cls_num(COUNTS)
    expected = F.cross_entropy(logits + 1.0 * log_cls_num.unsqueeze(0), target)
    log_prior = losses.class_log_prior(COUNTS, OFFICIAL.prior_smoothing)
    got = losses.la_cross_entropy(logits, target, log_prior, OFFICIAL.tau)
    assert abs(got.item() - expected.item()) < 1e-6


@pytest.mark.parametrize("epochs", [1, 3, 20])
def test_official_warmup_is_per_epoch_from_001_to_095(epochs):
    steps_per_epoch = 4
    for epoch in range(epochs):
        for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):  # constant within the epoch
            assert losses.warmup_factor(OFFICIAL, epoch, epochs, step, epochs * steps_per_epoch) == pytest.approx(
                official_dynamic_loss_scale(epoch, epochs), abs=1e-12)
    if epochs == 20:
        assert losses.warmup_factor(OFFICIAL, 19, 20, 79, 80) == pytest.approx(0.9505)


def test_pa_over_all_image_class_pairs():
    gen = torch.Generator().manual_seed(1)
    weights = torch.rand(4, 3, 5, generator=gen).softmax(-1)  # (B, C, V)
    prior = torch.rand(3, 5, generator=gen)
    prior[1, 2] = 0.0
    labels = torch.tensor([0, 2, 1, 1])
    got = losses.prior_alignment(weights, labels, prior, OFFICIAL.pa_pairs)
    assert abs(got.item() - official_pa(weights, prior).item()) < 1e-6


def test_ka_with_the_learned_projection_and_temperature():
    gen = torch.Generator().manual_seed(2)
    routed, targets = torch.randn(6, 16, generator=gen), torch.randn(6, 16, generator=gen)
    projection = losses.KAProjection(16, OFFICIAL.ka_dim, seed=3)
    assert projection.linear.weight.shape == (128, 16) and not projection.linear.bias.any()
    assert projection.linear.weight.std().item() == pytest.approx(0.02, rel=0.1)  # nn.init.normal_(std=0.02)
    expected = official_ka(routed, targets, projection, OFFICIAL.ka_temperature)
    got = losses.knowledge_alignment(routed, targets, projection, OFFICIAL.ka_temperature)
    assert abs(got.item() - expected.item()) < 1e-6


def _model(dropout=0.0):
    gen = torch.Generator().manual_seed(4)
    names = F.normalize(torch.randn(5, 16, generator=gen), dim=-1)
    library = F.normalize(torch.randn(5, 3, 16, generator=gen), dim=-1)
    params = ModelParams(heads=2, dropout=dropout, logit_scale=100.0, router_init="pytorch", router_qk_init="pytorch",
                         router_scale=1.0, router_scale_learned=False)  # the official attention: logits q.k/sqrt(e)
    return MDPRModel(names, library, None, params, seed=0, router_init="pytorch"), gen


def test_total_loss_is_mdpr_loss_of_the_official_code():
    """MDPRLoss.forward on the same outputs: CE(base) + s * 0.1 * CCE(sem) + w_pa * PA + s * w_ka * KA."""
    model, gen = _model()
    feats = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    params = TrainParams(**{**OFFICIAL.__dict__, "lambda_pa": 0.05, "lambda_ka": 0.1})
    projection = losses.KAProjection(16, params.ka_dim, seed=5)
    epoch, epochs = 3, 20
    outputs = model(feats)
    loss, _ = losses.mdpr_loss(outputs, target, losses.class_log_prior(COUNTS, params.prior_smoothing), params,
                               losses.warmup_factor(params, epoch, epochs, 0, 1), model, projection)

    _, attn_weights, routed_all = naive_router(model.router.attn, feats, model.library_feats)  # (B, C, V), (B, C, d)
    torch.testing.assert_close(attn_weights, outputs["weights"], atol=1e-6, rtol=0)
    scale = official_dynamic_loss_scale(epoch, epochs)
    expected = (1.0 * F.cross_entropy(outputs["base"], target)
                + scale * 0.1 * F.cross_entropy(outputs["sem"] + official_log_cls_num(COUNTS), target)
                + 0.05 * official_pa(attn_weights, model.library_prior)
                + scale * 0.1 * official_ka(routed_all[torch.arange(6), target], model.library_feats.mean(1)[target],
                                            projection, 2.0))
    assert abs(loss.item() - expected.item()) < 1e-6


def test_logit_scale_is_clamped_in_place_at_log_100_and_stays_trainable():
    model, gen = _model()
    assert model.scale().item() == torch.tensor(math.log(100.0)).exp().item()  # CLIP's 100, as exp of the clamped log
    model.scale().backward()
    assert model.logit_scale.grad.item() > 0  # not frozen at the bound (a clamp on exp(.) would zero the gradient)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(500.0))
    expected = torch.tensor(math.log(500.0)).clamp(max=math.log(100.0)).exp()  # module_maple.py: clamp_ then exp()
    assert model.scale().item() == expected.item()
    assert model.logit_scale.item() == pytest.approx(math.log(100.0), abs=1e-6)  # the parameter itself was clamped


def test_pytorch_router_init_is_nn_multihead_attention_init():
    torch.manual_seed(6)
    reference = nn.MultiheadAttention(16, 2, dropout=0.2, batch_first=True)
    torch.manual_seed(6)
    router = Router(16, 2, dropout=0.2, init="pytorch")
    for key, value in reference.state_dict().items():
        assert torch.equal(router.attn.state_dict()[key], value), key
    assert not router.attn.in_proj_bias.any() and not router.attn.out_proj.bias.any()  # as the official code sets
    bound = math.sqrt(6 / (16 + 3 * 16))  # xavier_uniform_ on the (3d, d) in_proj_weight
    assert router.attn.in_proj_weight.abs().max() <= bound


def test_schedule_is_cosine_per_epoch_with_floor_1e6():
    """main_maple.py: CosineAnnealingLR(optimizer, args.epochs, eta_min=1e-6), scheduler.step() after each epoch."""
    model, gen = _model()
    feats = F.normalize(torch.randn(40, 16, generator=gen), dim=-1)
    labels = torch.arange(40) % 5
    params = TrainParams(**{**OFFICIAL.__dict__, "epochs": 4, "batch_size": 16, "lr": 1e-2})
    _, history, _ = fit(model, feats, labels, [8] * 5, params)
    for record in history:  # the lr of epoch e (1-based) at its last step: constant within the epoch
        expected = 1e-6 + (1e-2 - 1e-6) * (1 + math.cos(math.pi * (record["epoch"] - 1) / 4)) / 2
        assert record["lr"] == pytest.approx(expected, abs=1e-9)
