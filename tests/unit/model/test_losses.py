"""MDPR losses (the project's variants; tests/unit/model/test_official.py pins the official code's): logit
adjustment, the warm-up, prior and knowledge alignment, the total."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.config.model_params import ModelParams, TrainParams
from pipeline.model.losses import (
    KAProjection,
    class_log_prior,
    knowledge_alignment,
    la_cross_entropy,
    mdpr_loss,
    prior_alignment,
    warmup_factor,
)
from pipeline.model.mdpr import MDPRModel


def test_class_log_prior_is_log_frequency_and_finite_for_empty_classes():
    torch.testing.assert_close(class_log_prior([3, 1]), torch.tensor([math.log(0.75), math.log(0.25)]))
    assert torch.isfinite(class_log_prior([5, 0])).all()


def test_la_cross_entropy_adds_tau_log_prior_and_is_plain_ce_at_tau_zero():
    logits, labels = torch.tensor([[2.0, 1.0], [0.5, 0.0]]), torch.tensor([1, 1])
    log_prior = torch.tensor([math.log(0.9), math.log(0.1)])
    assert la_cross_entropy(logits, labels, log_prior, 0.0) == F.cross_entropy(logits, labels)
    # hand-computed: adjusted logits [2 + log .9, 1 + log .1] and [.5 + log .9, log .1] (tau = 1)
    expected = -(math.log(0.1 * math.e / (0.9 * math.e ** 2 + 0.1 * math.e))
                 + math.log(0.1 / (0.9 * math.e ** 0.5 + 0.1))) / 2
    assert math.isclose(la_cross_entropy(logits, labels, log_prior, 1.0).item(), expected, rel_tol=1e-5)
    # adjusting by a rare class's prior makes its training loss larger: the margin it must win grows
    assert la_cross_entropy(logits, labels, log_prior, 1.0) > F.cross_entropy(logits, labels)


def test_linear_warmup_ramps_per_step_from_001_to_one():
    linear = TrainParams(sem_warmup="linear")
    assert warmup_factor(linear, 0, 2, 0, 11) == pytest.approx(0.01)
    assert warmup_factor(linear, 0, 2, 5, 11) == pytest.approx(0.505)
    assert warmup_factor(linear, 1, 2, 10, 11) == pytest.approx(1.0)
    assert warmup_factor(linear, 1, 2, 50, 11) == pytest.approx(1.0)  # past the end stays at full
    assert warmup_factor(linear, 0, 1, 0, 1) == pytest.approx(0.01)
    # the epoch does not matter to the linear ramp, only the step
    assert warmup_factor(linear, 0, 2, 5, 11) == warmup_factor(linear, 1, 2, 5, 11)


def test_true_class_prior_alignment_is_one_minus_cosine_with_the_true_class_prior_row():
    prior = torch.tensor([[0.2, 0.2, 0.0], [0.0, 0.3, 0.1]])  # (C=2, V=3)
    weights = torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]],  # image 0: class 0 aligned with its prior
                            [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]])  # image 1: class 1 weights orthogonal to prior
    labels = torch.tensor([0, 1])
    assert prior_alignment(weights, labels, prior, "true_class").item() == pytest.approx((0.0 + 1.0) / 2, abs=1e-5)
    weights[1, 1] = torch.tensor([0.0, 0.75, 0.25])  # now proportional to prior row 1
    assert prior_alignment(weights, labels, prior, "true_class").item() == pytest.approx(0.0, abs=1e-5)
    # the other classes' rows never count: image 0 / class 1 is orthogonal to its prior and changes nothing
    assert prior_alignment(weights, labels, prior, "all").item() > 0.2


def test_knowledge_alignment_is_zero_when_routed_matches_a_unit_target_and_trains_the_projection():
    targets = F.normalize(torch.randn(4, 16), dim=-1)
    projection = KAProjection(16, 8, seed=0)
    assert knowledge_alignment(3.0 * targets, targets, projection, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    routed = torch.randn(4, 16, requires_grad=True)
    loss = knowledge_alignment(routed, targets, projection, 2.0)
    loss.backward()
    assert loss.item() > 0 and routed.grad.abs().sum() > 0 and projection.linear.weight.grad.abs().sum() > 0
    # without a projection (ka_dim = 0): KL(q || p) over the d coordinates, q the (detached) target distribution
    loss = knowledge_alignment(routed.detach(), targets, KAProjection(16, 0, seed=0), 0.25)
    log_p = F.log_softmax(4.0 * F.normalize(routed.detach(), dim=-1), -1)
    q = F.softmax(4.0 * targets, -1)
    assert loss.item() == pytest.approx((q * (q.log() - log_p)).sum(-1).mean().item(), rel=1e-5)


def _model_and_batch(classes=5, views=3, dim=8, batch=6):
    gen = torch.Generator().manual_seed(0)
    model = MDPRModel(F.normalize(torch.randn(classes, dim, generator=gen), dim=-1),
                      F.normalize(torch.randn(classes, views, dim, generator=gen), dim=-1), None,
                      ModelParams(heads=2, dropout=0.0), seed=0)
    feats = F.normalize(torch.randn(batch, dim, generator=gen), dim=-1)
    labels = torch.randint(classes, (batch,), generator=gen)
    return model, model(feats), labels, class_log_prior(torch.arange(classes, 0, -1) * 10)


@pytest.mark.parametrize("base_loss", ["ce", "la"])
def test_mdpr_loss_is_the_weighted_sum_of_its_parts(base_loss):
    model, outputs, labels, log_prior = _model_and_batch()
    params = TrainParams(base_loss=base_loss, tau=1.0, lambda_sem=0.5, lambda_pa=0.3, lambda_ka=0.2, ka_dim=4)
    loss, parts = mdpr_loss(outputs, labels, log_prior, params, 0.8, model, KAProjection(8, 4, seed=0))
    assert set(parts) == {"base", "sem", "pa", "ka", "lambda_sem"}
    assert parts["lambda_sem"].item() == pytest.approx(0.4)  # lambda_sem x the warm-up factor
    expected = parts["base"] + 0.4 * parts["sem"] + 0.3 * parts["pa"] + 0.2 * 0.8 * parts["ka"]
    torch.testing.assert_close(loss.detach(), expected)
    base_tau = 1.0 if base_loss == "la" else 0.0
    torch.testing.assert_close(parts["base"], la_cross_entropy(outputs["base"], labels, log_prior, base_tau).detach())
    torch.testing.assert_close(parts["sem"], la_cross_entropy(outputs["sem"], labels, log_prior, 1.0).detach())
    loss.backward()
    assert model.router.attn.in_proj_weight.grad.abs().sum() > 0 and model.residual.grad.abs().sum() > 0


def test_mdpr_loss_skips_switched_off_alignment_terms():
    model, outputs, labels, log_prior = _model_and_batch()
    loss, parts = mdpr_loss(outputs, labels, log_prior, TrainParams(lambda_sem=0.1), 0.01, model)
    assert set(parts) == {"base", "sem", "lambda_sem"}
    assert parts["lambda_sem"].item() == pytest.approx(0.001)
    torch.testing.assert_close(loss.detach(), parts["base"] + 0.001 * parts["sem"])
