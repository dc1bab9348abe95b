"""Params sections of learning: the MDPR head, its optimisation, and how its two branches are fused and reported.

    model, train = load_sections("params.yaml", ModelParams, TrainParams)     # pipeline.config.params
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pipeline.config.schema import check


@dataclass(frozen=True)
class ModelParams:
    """Section `model`: the lightweight MDPR head trained on cached features."""

    SECTION = "model"
    heads: int = 8
    """Attention heads of the router (the feature width must be divisible by it)."""
    dropout: float = 0.2
    """Dropout on the routing weights during training."""
    residual_scale: float = 1.0
    """alpha in w_c = normalise(t_c + alpha * r_c): scale of the learnable class-prompt residual."""
    adapter: bool = False
    """Add a light residual visual adapter (CLIP-Adapter style) on image features."""
    adapter_ratio: float = 0.2
    """Weight of the adapter output in the residual mix."""
    logit_scale: float = 30.0
    """Initial logit scale s (learnable; clamped at 100)."""
    router_init: Literal["identity", "pytorch"] = "identity"
    """Router value/output projections start at the identity (semantic branch = zero-shot with the library) or
    random (reference code)."""
    base: Literal["residual", "coop"] = "residual"
    """Base branch: residual = class-name embeddings + a learnable residual (no text encoder in training); coop =
    learnable context vectors in prompts "[ctx] {class name}." through the frozen CLIP text encoder every step."""
    n_ctx: int = 4
    """coop: number of learnable context vectors (must equal the token count of ctx_init when that is set)."""
    ctx_init: str = "a photo of a"
    """coop: text whose token embeddings initialise the context; empty = random N(0, 0.02)."""
    class_specific_ctx: bool = False
    """coop: one context per class (CoOp's CSC) instead of one shared by all classes."""

    def validate(self) -> None:
        check(self, "heads", self.heads >= 1, "an integer >= 1")
        check(self, "dropout", 0 <= self.dropout < 1, "a number in [0, 1)")
        check(self, "residual_scale", self.residual_scale >= 0, "a number >= 0")
        check(self, "adapter_ratio", 0 <= self.adapter_ratio <= 1, "a number in [0, 1]")
        check(self, "logit_scale", 0 < self.logit_scale <= 100, "a number in (0, 100]")
        check(self, "n_ctx", 1 <= self.n_ctx <= 64, "an integer in [1, 64]")


@dataclass(frozen=True)
class TrainParams:
    """Section `train`: optimisation on cached features."""

    SECTION = "train"
    epochs: int = 20
    """Passes over the training features."""
    lr: float = 1e-3
    """AdamW learning rate (cosine schedule to zero)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    batch_size: int = 128
    """Images per step."""
    seed: int = 0
    """Seed for init, shuffling and dropout (CPU runs are bit-reproducible)."""
    base_loss: Literal["ce", "la"] = "la"
    """Loss of the base branch: plain cross-entropy or logit-adjusted cross-entropy."""
    tau: float = 1.0
    """Logit-adjustment strength: tau * log(class prior) is added to the logits during training."""
    lambda_sem: float = 0.1
    """Weight of the semantic (router) loss; ramps linearly from 0.01 to this value over training."""
    lambda_pa: float = 0.0
    """Weight of the prior-alignment loss (routing weights of the true class vs its prior row)."""
    lambda_ka: float = 0.0
    """Weight of the knowledge-alignment loss (routed feature vs the class's mean description feature)."""

    def validate(self) -> None:
        check(self, "epochs", self.epochs >= 1, "an integer >= 1")
        check(self, "lr", self.lr > 0 and math.isfinite(self.lr), "a number > 0")
        check(self, "weight_decay", self.weight_decay >= 0, "a number >= 0")
        check(self, "batch_size", self.batch_size >= 1, "an integer >= 1")
        check(self, "tau", self.tau >= 0, "a number >= 0")
        for key in ("lambda_sem", "lambda_pa", "lambda_ka"):
            check(self, key, getattr(self, key) >= 0, "a number >= 0")


@dataclass(frozen=True)
class EvaluateParams:
    """Section `evaluate`: how the two branches are fused and reported."""

    SECTION = "evaluate"
    fusion_weight: float = 0.5
    """w in logits = w * base + (1 - w) * semantic."""
    posthoc_tau: float = 0.0
    """Post-hoc logit adjustment: subtract tau * log(class prior) from the fused logits (0 = off)."""

    def validate(self) -> None:
        check(self, "fusion_weight", 0 <= self.fusion_weight <= 1, "a number in [0, 1]")
        check(self, "posthoc_tau", self.posthoc_tau >= 0, "a number >= 0")
