"""Evaluation of every method on one split, batch by batch (memory does not grow with C x N).

    preds, routing = predict_methods(model, split_feats, labels, class_feats, library_feats, mask, fusion_weight,
                                     posthoc_tau, log_prior)
    metrics = {method: accuracy_report(preds[method], labels, train_counts) for method in METHODS}

Methods: `zero_shot` (image vs class-name prompts), `zero_shot_library` (image vs each class's mean description
embedding), `base` (learned class prompts), `semantic` (router), `mdpr` (w * base + (1 - w) * semantic, minus
posthoc_tau * log prior when post-hoc logit adjustment is on). Cached multi-view features (N, A, d) are scored view
by view and their logits averaged.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import UserError
from pipeline.features import build_model
from pipeline.model import MDPRModel, fuse
from pipeline.params import ModelParams, from_dict

METHODS = ("zero_shot", "zero_shot_library", "base", "semantic", "mdpr")
ZERO_SHOT_SCALE = 100.0


def load_checkpoint(path, feature_hashes: dict) -> dict:
    """The training checkpoint (safe loader), refused when it was trained on other feature files."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path} not found; run `mdpr train` (or `dvc repro train`) first.") from None
    except Exception as err:  # noqa: BLE001 - a damaged or foreign file, reported as such
        raise UserError(f"{path} is not a readable MDPR checkpoint ({str(err)[:100]}); rerun `mdpr train`.") from None
    trained_on = checkpoint.get("feature_sha256", {})
    changed = sorted(name for name, digest in feature_hashes.items() if trained_on.get(name) != digest)
    if changed:
        raise UserError(f"{path} was trained on other features ({', '.join(changed)} changed since); rerun "
                        "`mdpr train` (or `dvc repro`).")
    return checkpoint


def load_trained_model(feats, checkpoint: dict) -> MDPRModel:
    """The checkpoint's model rebuilt on the cached features, weights loaded, in eval mode."""
    model = build_model(feats, from_dict(ModelParams, checkpoint["model"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def fused_logits(base: torch.Tensor, sem: torch.Tensor, fusion_weight: float, posthoc_tau: float,
                 log_prior: torch.Tensor) -> torch.Tensor:
    """MDPR's prediction: w * base + (1 - w) * semantic, minus posthoc_tau * log prior (B, C)."""
    return fuse(base, sem, fusion_weight) - posthoc_tau * log_prior


def per_dimension(weights: np.ndarray, dimensions: list[str]) -> dict[str, np.ndarray]:
    """Routing weights (..., V) summed over the slots of each dimension: {dimension: (...)}."""
    return {dim: weights[..., [i for i, d in enumerate(dimensions) if d == dim]].sum(-1)
            for dim in dict.fromkeys(dimensions)}


def library_means(library_feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(C, V, d), (C, V) -> (C, d): normalised mean of each class's valid description embeddings."""
    return F.normalize((library_feats.float() * mask[..., None].float()).sum(1), dim=-1)


@torch.inference_mode()
def predict_methods(model: MDPRModel, feats: np.ndarray, labels: np.ndarray, fusion_weight: float,
                    posthoc_tau: float, log_prior: torch.Tensor, batch_size: int = 512,
                    device: str = "cpu") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Predicted class per method (N,) and the routing weights of each image's true class (N, V)."""
    model.eval().to(device)
    text = model.class_feats.float()  # (C, d)
    described = library_means(model.library_feats, model.library_mask)  # (C, d)
    preds = {method: [] for method in METHODS}
    routing = []
    for start in range(0, len(labels), batch_size):
        batch = torch.as_tensor(feats[start:start + batch_size]).to(device).float()
        views = batch if batch.dim() == 3 else batch[:, None]  # (B, A, d)
        logits = {method: 0.0 for method in METHODS}
        weights = 0.0
        for view in views.unbind(1):  # (B, d) each
            view = F.normalize(view, dim=-1)
            outputs = model(view)
            logits["zero_shot"] = logits["zero_shot"] + ZERO_SHOT_SCALE * view @ text.T
            logits["zero_shot_library"] = logits["zero_shot_library"] + ZERO_SHOT_SCALE * view @ described.T
            logits["base"] = logits["base"] + outputs["base"].float()
            logits["semantic"] = logits["semantic"] + outputs["sem"].float()
            weights = weights + outputs["weights"].float()  # (B, C, V)
        logits = {method: value / views.shape[1] for method, value in logits.items()}  # mean over views
        logits["mdpr"] = fused_logits(logits["base"], logits["semantic"], fusion_weight, posthoc_tau,
                                      log_prior.to(device))
        for method in METHODS:
            preds[method].append(logits[method].argmax(-1).cpu())
        true = torch.as_tensor(labels[start:start + batch_size]).to(device).long()
        routing.append((weights / views.shape[1])[torch.arange(len(true), device=device), true].cpu())  # (B, V)
    return {m: torch.cat(p).numpy() for m, p in preds.items()}, torch.cat(routing).numpy()


def dimension_weights(routing: np.ndarray, labels: np.ndarray, groups: list[str],
                      dimensions: list[str]) -> dict[str, dict[str, float]]:
    """Mean routing weight per dimension (slots of one dimension summed) for many/medium/few test images."""
    out = {}
    image_groups = np.array([groups[label] for label in labels])
    for group in ("many", "medium", "few"):
        rows = routing[image_groups == group]  # (n, V)
        if len(rows):
            out[group] = {dim: round(float(sums.mean()), 6) for dim, sums in per_dimension(rows, dimensions).items()}
    return out
