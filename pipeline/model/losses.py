"""MDPR training losses.

    log_prior = class_log_prior(train_counts, smoothing=params.prior_smoothing)            # (C,)
    s = warmup_factor(params, epoch, epochs, step, total_steps)
    loss, parts = mdpr_loss(model(x), y, log_prior, params, s, model, ka_projection)

L = base(logits_base, y) + lambda_sem * s * LA-CE(logits_sem, y) + lambda_pa * PA + lambda_ka * s * KA, where

- base is plain CE (`base_loss: ce`, the official code) or LA-CE (`base_loss: la`);
- LA-CE(z, y) = CE(z + tau * log pi, y), pi the training class prior (logit adjustment, Menon et al. 2021) with
  `prior_smoothing` k: pi_c = (n_c + k) / sum(n + k) (official code: k = 1); the semantic branch always uses LA-CE;
- s is the warm-up factor (`sem_warmup`): official = min(1, 0.01 + 0.99 e / E) for epoch e (0-based) of E, constant
  within the epoch (0.01 to 0.95); linear = 0.01 + 0.99 t / (T - 1) for step t of T (0.01 to 1);
- PA = mean of 1 - cos(a_bc, m_c) between the head-averaged routing weights a_bc (V,) and the prior row m_c (V,)
  (cosine of each description with the class-name embedding), over all B x C pairs (`pa_pairs: all`, official)
  or over each image's true class only (`true_class`);
- KA = KL(q || p), batch mean, with q = softmax(P(t_y) / T) (detached) and p = softmax(P(x_by / ||x_by||) / T):
  x_by is the routed feature of image b for its true class, t_y the mean of class y's description embeddings,
  P a learned Linear(d -> ka_dim) shared by both sides (`KAProjection`; identity when ka_dim = 0) and T
  `ka_temperature`. This is the official code's KA.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config.model_params import TrainParams

WARMUP_START = 0.01
NORM_EPS = {"pa": 1e-5, "ka": 1e-6}  # the official code's epsilons in its row / feature normalisations


def class_log_prior(train_counts, smoothing: float = 0.0) -> torch.Tensor:
    """log pi_c = log((n_c + k) / sum(n + k)) (C,); with k = 0 an empty class counts as 1 so the prior stays finite."""
    counts = torch.as_tensor(train_counts, dtype=torch.float64) + smoothing
    if not smoothing:
        counts = counts.clamp_min(1)
    return (counts / counts.sum()).log().float()


def la_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor, tau: float) -> torch.Tensor:
    """CE(logits + tau * log_prior, labels): logits (B, C), labels (B,), log_prior (C,); tau = 0 is plain CE."""
    return F.cross_entropy(logits.float() + tau * log_prior, labels)


def warmup_factor(params: TrainParams, epoch: int, epochs: int, step: int, total_steps: int) -> float:
    """s for the semantic and KA losses at `epoch` (0-based, of `epochs`) and global `step` (0-based, of
    `total_steps`)."""
    if params.sem_warmup == "official":
        return min(1.0, WARMUP_START + (1 - WARMUP_START) * epoch / epochs)
    return min(1.0, WARMUP_START + (1 - WARMUP_START) * step / max(total_steps - 1, 1))


def prior_alignment(weights: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor, pairs: str) -> torch.Tensor:
    """PA: weights (B, C, V) head-averaged routing weights, labels (B,), prior (C, V); pairs `all` or `true_class`."""
    if pairs == "true_class":
        rows = torch.arange(len(labels), device=labels.device)
        weights, prior = weights[rows, labels][:, None], prior[labels][:, None]  # (B, 1, V) each
    weights = weights.float()
    weights = weights / (weights.norm(dim=-1, keepdim=True) + NORM_EPS["pa"])  # (B, C', V)
    prior = prior.float() / (prior.float().norm(dim=-1, keepdim=True) + NORM_EPS["pa"])  # (C', V) or (B, 1, V)
    return (1 - F.cosine_similarity(weights, prior.expand_as(weights), dim=-1)).mean()


class KAProjection(nn.Module):
    """KA's learned projection P = Linear(d -> k) (weights N(0, 0.02), bias 0, as in the official code); identity when
    k = 0. Trained with the head, used only by the loss (not saved in the checkpoint)."""

    def __init__(self, dim: int, out_dim: int, seed: int):
        super().__init__()
        self.linear = nn.Linear(dim, out_dim) if out_dim else None
        if self.linear is not None:
            with torch.no_grad():
                nn.init.normal_(self.linear.weight, std=0.02, generator=torch.Generator().manual_seed(seed))
                nn.init.zeros_(self.linear.bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats if self.linear is None else self.linear(feats)


def knowledge_alignment(routed: torch.Tensor, targets: torch.Tensor, projection: nn.Module,
                        temperature: float) -> torch.Tensor:
    """KA = KL(softmax(P(t) / T) || softmax(P(x / ||x||) / T)), batch mean: routed x (B, d), targets t (B, d)."""
    routed = routed.float()
    routed = routed / (routed.norm(dim=-1, keepdim=True) + NORM_EPS["ka"])
    log_p = F.log_softmax(projection(routed) / temperature, dim=-1)  # (B, k)
    q = F.softmax(projection(targets.float()) / temperature, dim=-1).detach()  # (B, k)
    return F.kl_div(log_p, q, reduction="batchmean")


def mdpr_loss(outputs: dict, labels: torch.Tensor, log_prior: torch.Tensor, params: TrainParams, warmup: float,
              model, ka_projection: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached parts (base, sem, pa, ka, lambda_sem) for one batch of `model(x)` outputs."""
    base_tau = params.tau if params.base_loss == "la" else 0.0
    lam_sem = params.lambda_sem * warmup
    parts = {"base": la_cross_entropy(outputs["base"], labels, log_prior, base_tau),
             "sem": la_cross_entropy(outputs["sem"], labels, log_prior, params.tau)}
    loss = parts["base"] + lam_sem * parts["sem"]
    if params.lambda_pa > 0:
        parts["pa"] = prior_alignment(outputs["weights"], labels, model.library_prior, params.pa_pairs)
        loss = loss + params.lambda_pa * parts["pa"]
    if params.lambda_ka > 0:
        routed = model.routed(outputs["feats"], labels)  # (B, d)
        targets = model.description_means(normalise=False)[labels]  # (B, d)
        projection = ka_projection if ka_projection is not None else nn.Identity()
        parts["ka"] = knowledge_alignment(routed, targets, projection, params.ka_temperature)
        loss = loss + params.lambda_ka * warmup * parts["ka"]
    parts = {name: value.detach() for name, value in parts.items()}
    parts["lambda_sem"] = torch.tensor(lam_sem)
    return loss, parts
