"""MDPR training losses.

    log_prior = class_log_prior(train_counts)                           # (C,)
    loss, parts = mdpr_loss(model(x), y, log_prior, TrainParams(), step, total_steps, model)

L = base(logits_base, y) + lam_sem(step) * LA-CE(logits_sem, y) + lam_pa * PA + lam_ka * KA, where

- base is plain CE (`base_loss: ce`) or LA-CE (`base_loss: la`);
- LA-CE(z, y) = CE(z + tau * log pi, y), pi the training class prior (logit adjustment, Menon et al. 2021);
  the semantic branch always uses LA-CE with `tau` (tau = 0 makes it plain CE);
- lam_sem ramps linearly from min(0.01, lambda_sem) at step 0 to lambda_sem at the last step;
- PA = mean_b [1 - cos(a_{b, y_b}, prior_{y_b})]: the true class's head-averaged routing weights (B, V) against its
  prior row (cosine of each description with the class-name embedding, 0 where masked);
- KA = mean_b KL(q_b || p_b), q_b = softmax(sqrt(d) * mean_desc_{y_b}) and p_b = softmax(sqrt(d) * normalise(x_b)),
  with x_b the routed feature of image b for its true class (the router's output, after its output projection)
  and mean_desc_c the normalised mean of class c's valid description embeddings. The softmax runs over the d
  feature coordinates; both vectors are unit-norm, so coordinates are ~1/sqrt(d), and the sqrt(d) temperature
  puts them on a unit scale (without it both softmaxes are almost uniform and KA is ~0).
  The target q is a constant (the frozen library).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pipeline.config.model_params import TrainParams

SEM_RAMP_START = 0.01


def class_log_prior(train_counts) -> torch.Tensor:
    """log pi_c = log(n_c / N) (C,), with empty classes counted as 1 so the prior stays finite."""
    counts = torch.as_tensor(train_counts, dtype=torch.float64).clamp_min(1)
    return (counts / counts.sum()).log().float()


def la_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor, tau: float) -> torch.Tensor:
    """CE(logits + tau * log_prior, labels): logits (B, C), labels (B,), log_prior (C,); tau = 0 is plain CE."""
    return F.cross_entropy(logits.float() + tau * log_prior, labels)


def sem_weight(full: float, step: int, total_steps: int) -> float:
    """lam_sem at `step` (0-based): linear from min(0.01, full) at step 0 to full at step total_steps - 1."""
    start = min(SEM_RAMP_START, full)
    progress = min(step / max(total_steps - 1, 1), 1.0)
    return start + (full - start) * progress


def prior_alignment(weights: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """PA = mean(1 - cos(weights[b, y_b], prior[y_b])): weights (B, C, V), labels (B,), prior (C, V)."""
    true_weights = weights[torch.arange(len(labels), device=labels.device), labels]  # (B, V)
    return (1 - F.cosine_similarity(true_weights.float(), prior[labels].float(), dim=-1)).mean()


def knowledge_alignment(routed: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KA = mean KL(softmax(sqrt(d) t) || softmax(sqrt(d) normalise(x))): routed x (B, d), targets t (B, d) unit."""
    temperature = math.sqrt(routed.shape[-1])
    log_p = F.log_softmax(temperature * F.normalize(routed.float(), dim=-1), dim=-1)  # (B, d)
    log_q = F.log_softmax(temperature * targets.float(), dim=-1)  # (B, d)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)


def mdpr_loss(outputs: dict, labels: torch.Tensor, log_prior: torch.Tensor, params: TrainParams, step: int,
              total_steps: int, model) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached parts (base, sem, pa, ka, lambda_sem) for one batch of `model(x)` outputs."""
    base_tau = params.tau if params.base_loss == "la" else 0.0
    lam_sem = sem_weight(params.lambda_sem, step, total_steps)
    parts = {"base": la_cross_entropy(outputs["base"], labels, log_prior, base_tau),
             "sem": la_cross_entropy(outputs["sem"], labels, log_prior, params.tau)}
    loss = parts["base"] + lam_sem * parts["sem"]
    if params.lambda_pa > 0:
        parts["pa"] = prior_alignment(outputs["weights"], labels, model.library_prior)
        loss = loss + params.lambda_pa * parts["pa"]
    if params.lambda_ka > 0:
        routed = model.routed(outputs["feats"], labels)  # (B, d)
        parts["ka"] = knowledge_alignment(routed, model.description_means()[labels])
        loss = loss + params.lambda_ka * parts["ka"]
    parts = {name: value.detach() for name, value in parts.items()}
    parts["lambda_sem"] = torch.tensor(lam_sem)
    return loss, parts
