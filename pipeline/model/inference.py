"""The one forward pass of a trained head over cached features: batched, averaged over cached views.

    for rows, out in infer(model, test_feats, batch_size=512, device="cpu", zero_shot=True):
        out["base"], out["sem"]              # (B, C) logits of rows `rows`
        out["weights"]                       # (B, C, V) routing weights
        out["zero_shot"], out["zero_shot_library"]     # (B, C), only with zero_shot=True

`feats` is (N, d) or (N, A, d) cached views (e.g. five crops): every output is the mean over the A views, so a
multi-view image is scored once. Training's validation, the evaluate stage and `mdpr predict` all score through here.
What depends only on the weights (class prompts, the router's class-side projections and Gram matrices) is computed
once per call (`MDPRModel.class_side`), not once per batch; `feats` may be an h5py dataset (read batch by batch).
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from pipeline.core.progress import progress_bar
from pipeline.features.zeroshot import zero_shot_logits
from pipeline.model.mdpr import HeadSide, MDPRModel


def scores(model: MDPRModel, view: torch.Tensor, zero_shot: bool = False,
           side: HeadSide | None = None) -> dict[str, torch.Tensor]:
    """The head's outputs for one view (B, d) of L2-normalised image features, float32; with the zero-shot baselines:
    image vs class-name prompts, and image vs each class's mean description embedding. `side`: model.class_side()."""
    side = side if side is not None else model.class_side()
    outputs = model(view, side)
    out = {"base": outputs["base"].float(), "sem": outputs["sem"].float(), "weights": outputs["weights"].float()}
    if zero_shot:
        out["zero_shot"] = zero_shot_logits(view, side.class_feats)
        out["zero_shot_library"] = zero_shot_logits(view, side.description_means)
    return out


def view_mean(score: Callable[[torch.Tensor], dict], feats: torch.Tensor) -> dict[str, torch.Tensor]:
    """`score(view)` averaged over the views of a batch: feats (B, d), or (B, A, d) with A cached views."""
    views = feats if feats.dim() == 3 else feats[:, None]  # (B, A, d)
    total: dict[str, torch.Tensor] = {}
    for view in views.unbind(1):  # (B, d) each
        for key, value in score(F.normalize(view, dim=-1)).items():
            total[key] = total[key] + value if key in total else value
    return {key: value / views.shape[1] for key, value in total.items()}


def infer(model: MDPRModel, feats, batch_size: int = 1024, device="cpu", zero_shot: bool = False,
          progress: bool = False, side: HeadSide | None = None) -> Iterator[tuple[slice, dict[str, torch.Tensor]]]:
    """(rows, outputs) per batch of cached features, in eval mode without gradients; the model's mode is restored.
    `progress`: a bar on stderr when scoring takes more than a few seconds; `side`: model.class_side() when the
    caller scores several splits with the same weights (else made here, once)."""
    was_training = model.training
    model.eval().to(device)
    try:
        if side is None:
            with torch.inference_mode():
                side = model.class_side()
        with progress_bar(len(feats), "score", "img", progress) as bar:
            for start in range(0, len(feats), batch_size):
                with torch.inference_mode():
                    batch = torch.as_tensor(feats[start:start + batch_size]).to(device).float()  # (B, d) | (B, A, d)
                    outputs = view_mean(lambda view: scores(model, view, zero_shot, side), batch)
                bar.update(len(batch))
                yield slice(start, start + len(batch)), outputs
    finally:
        model.train(was_training)


def branch_logits(model: MDPRModel, feats, batch_size: int = 1024, device="cpu",
                  labels=None) -> dict[str, torch.Tensor]:
    """base (N, C) and sem (N, C) logits of every row, float32 on CPU (preallocated, filled batch by batch); with
    `labels` (N,) also `routing` (N, V): the routing weights of each row's true class."""
    out: dict[str, torch.Tensor] = {}
    for rows, outputs in infer(model, feats, batch_size, device):
        true = None if labels is None else torch.as_tensor(labels[rows]).long().to(outputs["weights"].device)
        batch = {"base": outputs["base"], "sem": outputs["sem"]}
        if true is not None:
            batch["routing"] = outputs["weights"][torch.arange(len(true), device=true.device), true]  # (B, V)
        for key, value in batch.items():
            if key not in out:
                out[key] = torch.empty((len(feats), value.shape[1]), dtype=torch.float32)
            out[key][rows] = value.cpu()
    return out
