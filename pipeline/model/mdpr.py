"""The MDPR head trained on cached CLIP features: learnable class prompts (base branch) + the router (semantic).

    model = MDPRModel(class_feats, library_feats, library_mask, ModelParams())   # (C, d), (C, V, d), (C, V)
    out = model(image_feats)                    # image_feats (B, d)
    out["base"], out["sem"], out["weights"]     # (B, C), (B, C), (B, C, V)
    logits = fuse(out["base"], out["sem"], 0.5)
    side = model.class_side()                   # frozen weights: what needs no image, once per run
    out = model(image_feats, side)              # the same outputs, per batch only the image side
    for start, stop, part in model.side_chunks(model.class_side(router=False)):   # large C: classes in chunks
        out = model(image_feats, part)          # base (B, stop - start), ...: the router's side made per chunk
    model = MDPRModel(..., ModelParams(base="coop"), prompts=CoOpPrompts(...))  # pipeline/model/coop.py

Base branch (`model.base`): `residual` learns w_c = normalise(t_c + alpha * r_c) on the cached class-name
embeddings t_c (no text encoder in training); `coop` learns context vectors in prompts through the frozen text
encoder, w_c = normalise(prompts()[c]). Both feed the same base logits s * f . w_c.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config.model_params import ModelParams
from pipeline.core.errors import UserError
from pipeline.model import router as router_module
from pipeline.model.router import ClassSide, Router

MAX_LOGIT_SCALE = 100.0


@dataclass
class HeadSide:
    """What the head computes from its weights and the frozen caches alone, with no image: made once per run by
    `MDPRModel.class_side()` when many images are scored with frozen weights (evaluation, predict)."""

    scale: torch.Tensor               # () logit scale s
    class_weights: torch.Tensor       # (C, d) normalised class prompts w_c
    router: list[ClassSide] | None    # the router's class side (projections, Gram matrices) in class chunks; None:
                                      # made chunk by chunk by MDPRModel.side_chunks
    class_feats: torch.Tensor         # (C, d) class-name embeddings, float32 (zero-shot baseline)
    description_means: torch.Tensor   # (C, d) normalised mean description embeddings (zero-shot with the library)


class MDPRModel(nn.Module):
    """Base branch (learnable class prompts) and semantic branch (router) on cached features.

    Frozen inputs are buffers kept in their given dtype (float16 caches stay float16) and cast per call.
    `library_prior` (C, V) defaults to cos(description, class-name embedding), 0 where masked, as in library.h5.
    `library_norms` (C, V): each description's norm before L2 normalisation (library.h5 `norms`), required by
    `params.router_keys == "raw"`, where the router's keys and values are the normalised embeddings times these norms
    (the official code's raw text features); the zero-shot baselines and the prior always use the normalised ones.
    `seed` (optional) makes the parameter init independent of the global RNG; `router_init` is Router's `init`.
    `prompts` (required for `params.base == "coop"`): a module returning the (C, d) class text features.
    """

    def __init__(self, class_feats: torch.Tensor, library_feats: torch.Tensor, library_mask: torch.Tensor | None,
                 params: ModelParams = ModelParams(), library_prior: torch.Tensor | None = None,
                 seed: int | None = None, router_init: str = "identity", prompts: nn.Module | None = None,
                 library_norms: torch.Tensor | None = None):
        super().__init__()
        class_feats, library_feats = torch.as_tensor(class_feats), torch.as_tensor(library_feats)
        classes, views, dim = library_feats.shape
        if tuple(class_feats.shape) != (classes, dim):
            raise UserError(f"model: class features {tuple(class_feats.shape)} do not match the library "
                            f"{tuple(library_feats.shape)} (C, V, d); rebuild the feature caches with the same model.")
        mask = (torch.ones(classes, views, dtype=torch.bool) if library_mask is None
                else torch.as_tensor(library_mask).bool())
        if not mask.any(1).all():
            raise UserError("model: some class has no valid description in the library mask; rebuild the library.")
        if library_prior is None:
            prior = F.cosine_similarity(library_feats.float(), class_feats.float()[:, None, :], dim=-1)
            library_prior = prior.masked_fill(~mask, 0.0)  # (C, V)
        if (params.base == "coop") != (prompts is not None):
            raise UserError(f"model: base {params.base!r} takes {'a' if params.base == 'coop' else 'no'} prompt "
                            "learner (pipeline/model/coop.py); build the model with pipeline.model.checkpoint.")
        if params.router_keys == "raw" and library_norms is None:
            raise UserError("model.router_keys = raw needs each description's raw norm (library.h5 `norms`), which "
                            "these library features lack; rerun `mdpr embed-library` or set model.router_keys: "
                            "normalised.")
        self.params = params
        norms = torch.ones(classes, views) if library_norms is None else torch.as_tensor(library_norms).float()
        self.register_buffer("library_norms", norms if params.router_keys == "raw" else torch.ones_like(norms))
        self.register_buffer("class_feats", class_feats)  # (C, d)
        self.register_buffer("library_feats", library_feats)  # (C, V, d)
        self.register_buffer("library_mask", mask)  # (C, V)
        self.register_buffer("library_prior", torch.as_tensor(library_prior).float())  # (C, V)
        rng = torch.random.fork_rng() if seed is not None else contextlib.nullcontext()
        with rng:
            if seed is not None:
                torch.manual_seed(seed)
            self.residual = nn.Parameter(torch.zeros(classes, dim)) if prompts is None else None  # r_c
            self.prompts = prompts
            self.logit_scale = nn.Parameter(torch.tensor(math.log(params.logit_scale)))  # log s, as in CLIP
            self.adapter = _adapter(dim) if params.adapter else None
            self.router = Router(dim, params.heads, params.dropout, router_init, params.router_qk_init,
                                 params.router_scale, params.router_scale_learned, params.router)

    @property
    def dtype(self) -> torch.dtype:
        """The head's parameter dtype (float32): cached features and class weights are cast to it."""
        return self.logit_scale.dtype

    def scale(self) -> torch.Tensor:
        """s = exp(logit_scale), after clamping the parameter itself at log 100 (in place, as CLIP and the official
        code do before each forward: the gradient still flows at the bound, and the parameter never drifts above)."""
        with torch.no_grad():
            self.logit_scale.clamp_(max=math.log(MAX_LOGIT_SCALE))
        return self.logit_scale.exp()

    def class_weights(self) -> torch.Tensor:
        """w_c = normalise(t_c + alpha * r_c) (residual) or normalise(CoOp prompt feature c) (coop): (C, d)."""
        if self.prompts is not None:
            return F.normalize(self.prompts().to(self.dtype), dim=-1)
        class_feats = self.class_feats.to(self.dtype)  # (C, d)
        return F.normalize(class_feats + self.params.residual_scale * self.residual, dim=-1)

    def adapt(self, image_feats: torch.Tensor) -> torch.Tensor:
        """Cast, optional CLIP-Adapter mix f' = (1 - ratio) f + ratio MLP(f), L2-normalise: (B, d) -> (B, d)."""
        feats = F.normalize(image_feats.to(self.dtype), dim=-1)
        if self.adapter is not None:
            ratio = self.params.adapter_ratio
            feats = F.normalize((1 - ratio) * feats + ratio * self.adapter(feats), dim=-1)
        return feats

    def library(self) -> torch.Tensor:
        return self.library_feats.to(self.dtype)  # (C, V, d)

    def router_library(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """The router's keys and values (C, V, d): the library, times the raw norms with router_keys "raw"; classes
        start..stop-1 only when given (a chunk of classes, without the whole product)."""
        return self.library()[start:stop] * self.library_norms[start:stop, :, None].to(self.dtype)

    def description_means(self, normalise: bool = True) -> torch.Tensor:
        """Each class's mean valid description embedding (C, d), L2-normalised unless `normalise=False`."""
        valid = self.library_mask.to(self.dtype)  # (C, V)
        means = torch.einsum("cv,cvd->cd", valid, self.library()) / valid.sum(1, keepdim=True)  # (C, d), no (C, V, d)
        return F.normalize(means, dim=-1) if normalise else means

    def routed(self, feats: torch.Tensor, class_idx: torch.Tensor) -> torch.Tensor:
        """Routed features (P, d) of adapted image features `feats` (P, d) for classes class_idx (P,)."""
        return self.router.routed(feats, class_idx, self.router_library(), self.library_mask)

    def class_side(self, router: bool = True) -> HeadSide:
        """Everything `forward` computes without the images (for frozen weights; no gradients are kept); `router`
        False leaves the router's side (the largest part: (VC, 2d) projections, (C, hV, hV) Gram matrices) to
        `side_chunks`."""
        with torch.no_grad():
            sides = self.router.class_sides(self.router_library(), self.library_mask) if router else None
            return HeadSide(self.scale(), self.class_weights(), sides, self.class_feats.float(),
                            self.description_means())

    def side_chunks(self, side: HeadSide) -> Iterator[tuple[int, int, HeadSide]]:
        """(start, stop, the side of classes start..stop-1) per chunk of router.SIDE_CHUNK classes, the router's
        part made when its chunk comes (unless `side` holds it): scoring one chunk at a time, memory stays flat in C."""
        chunk, classes = router_module.SIDE_CHUNK, len(side.class_weights)
        starts = range(0, classes, chunk)
        sizes = [min(chunk, classes - start) for start in starts]
        held = side.router is not None and [len(part.gram) for part in side.router] == sizes
        with torch.no_grad():
            for index, start in enumerate(starts):
                stop = min(start + chunk, classes)
                router = [side.router[index]] if held else \
                    self.router.class_sides(self.router_library(start, stop), self.library_mask[start:stop], chunk)
                yield start, stop, HeadSide(side.scale, side.class_weights[start:stop], router,
                                            side.class_feats[start:stop], side.description_means[start:stop])

    def forward(self, image_feats: torch.Tensor, side: HeadSide | None = None) -> dict[str, torch.Tensor]:
        """image_feats (B, d) -> base (B, C), sem (B, C), weights (B, C, V), feats (B, d) (the adapted features).

        `side` (from `class_side()`, same weights) skips the work that does not depend on the images."""
        feats = self.adapt(image_feats)  # (B, d)
        if side is None:
            scale, class_weights = self.scale(), self.class_weights()
            sim, weights = self.router(feats, self.router_library(), self.library_mask)  # (B, C), (B, C, V)
        else:
            scale, class_weights = side.scale, side.class_weights
            sim, weights = self.router(feats, None, side=side.router)
        return {"base": scale * feats @ class_weights.T, "sem": scale * sim, "weights": weights, "feats": feats}


def _adapter(dim: int) -> nn.Sequential:
    """CLIP-Adapter MLP: d -> d/4 -> d, no biases, ReLU after each layer."""
    hidden = max(dim // 4, 1)
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, dim, bias=False), nn.ReLU())


def fuse(base: torch.Tensor, sem: torch.Tensor, fusion_weight: float, posthoc_tau: float = 0.0,
         log_prior: torch.Tensor | None = None) -> torch.Tensor:
    """MDPR's prediction w * base + (1 - w) * sem, minus posthoc_tau * log prior (post-hoc logit adjustment): (B, C)."""
    fused = fusion_weight * base + (1 - fusion_weight) * sem
    return fused if not posthoc_tau else fused - posthoc_tau * log_prior
