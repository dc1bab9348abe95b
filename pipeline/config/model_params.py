"""Params sections of learning: the MDPR head, its optimisation, and how its two branches are fused and reported.

    model, train = load_sections("params.yaml", ModelParams, TrainParams)     # pipeline.config.params

Every choice of the paper's official code (Sha843/MDPR) is one value of these keys; a field's docstring names the
official value where the project's default differs, and `mdpr preset reference` sets them all.
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
    heads: int = 1
    """Attention heads of the router (the feature width must be divisible by it). Official: 8 (1 kept: better on val,
    see README: each of 8 heads routes on its own 1/8 slice of the features, too little to tell descriptions apart)."""
    dropout: float = 0.2
    """Dropout on the routing weights during training."""
    residual_scale: float = 1.0
    """alpha in w_c = normalise(t_c + alpha * r_c): scale of the learnable class-prompt residual."""
    adapter: bool = False
    """Add a light residual visual adapter (CLIP-Adapter style) on image features."""
    adapter_ratio: float = 0.2
    """Weight of the adapter output in the residual mix."""
    logit_scale: float = 30.0
    """Initial logit scale s (learnable; the parameter is clamped at log 100 before each forward). Official: 100
    (kept at 30: better on val, see README)."""
    router_init: Literal["identity", "pytorch"] = "identity"
    """identity: the router's value/output projections start at the identity (semantic branch = zero-shot with the
    library); pytorch: nn.MultiheadAttention's own init throughout. Official: pytorch (kept: better on val on average,
    see README)."""
    router: Literal["attention", "mean"] = "attention"
    """attention: image-conditioned weights over each class's descriptions (MDPR); mean: the uniform mean over its
    valid descriptions, the value/output projections kept (the ablation: does routing help?)."""
    router_qk_init: Literal["identity", "pytorch"] = "identity"
    """identity: the router's query/key projections start at the identity (logits = scaled per-head dot products of
    image and description); pytorch: Xavier init (logits near 0, weights near uniform at the start). Official:
    pytorch (identity kept: better on val, see README)."""
    router_scale: float = 300.0
    """Initial inverse temperature t multiplying the attention logits q.k / sqrt(head width) (log-parametrised;
    clamped at 1000). Official: 1, not learned (300 kept: better on val, see README)."""
    router_scale_learned: bool = True
    """Learn the inverse temperature t (else it stays router_scale). Official: false, with router_scale 1."""
    router_keys: Literal["normalised", "raw"] = "normalised"
    """The router's keys and values: the L2-normalised description embeddings of library.h5, or raw = those times
    each description's norm before normalisation (library.h5 `norms`), as the official code feeds them. Official:
    raw (see README)."""
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
        check(self, "router_scale", 0 < self.router_scale <= 1000, "a number in (0, 1000]")
        check(self, "n_ctx", 1 <= self.n_ctx <= 64, "an integer in [1, 64]")


@dataclass(frozen=True)
class TrainParams:
    """Section `train`: optimisation on cached features."""

    SECTION = "train"
    epochs: int = 20
    """Passes over the training features."""
    lr: float = 1e-3
    """AdamW learning rate at the start of the cosine schedule."""
    lr_schedule: Literal["per_epoch", "per_step"] = "per_epoch"
    """Cosine schedule from lr to lr_min, stepped once per epoch (as the official code) or after every batch."""
    lr_min: float = 1e-6
    """Floor of the cosine schedule (the lr after the last epoch or step), as in the official code."""
    weight_decay: float = 1e-4
    """AdamW weight decay (applied to every trained parameter, the logit scale included)."""
    batch_size: int = 128
    """Images per step."""
    seed: int = 0
    """Seed for init, shuffling and dropout (CPU runs are bit-reproducible)."""
    base_loss: Literal["ce", "la"] = "la"
    """Loss of the base branch: plain cross-entropy or logit-adjusted cross-entropy (with tau). Official: ce (kept:
    better on val, see README)."""
    tau: float = 1.0
    """Logit-adjustment strength: tau * log(class prior) is added to the logits of the LA losses during training."""
    prior_smoothing: float = 1.0
    """k in the LA class prior log((n_c + k) / sum(n + k)); 0 = the training frequency (an empty class counts as 1).
    1 as in the official code (as good or better on val, see README)."""
    lambda_sem: float = 0.1
    """Weight of the semantic (router) loss, times the warm-up factor s."""
    sem_warmup: Literal["official", "linear"] = "official"
    """Warm-up factor s of the semantic and KA losses: official = per epoch e (0-based) of E, min(1, 0.01 + 0.99 e / E)
    (0.01 to 0.95); linear = per step t of T, 0.01 + 0.99 t / (T - 1) (0.01 to 1)."""
    lambda_pa: float = 0.0
    """Weight of the prior-alignment loss PA = mean of 1 - cos(routing weights, prior row)."""
    pa_pairs: Literal["all", "true_class"] = "all"
    """Which (image, class) pairs PA averages over: all B x C pairs (official code) or each image's true class."""
    lambda_ka: float = 0.0
    """Weight of the knowledge-alignment loss KA, times the warm-up factor s (see README, The method)."""
    ka_dim: int = 128
    """Output width k of KA's learned projection Linear(d -> k), applied to both sides (0 = no projection), as in the
    official code."""
    ka_temperature: float = 2.0
    """Temperature T of KA's two softmaxes over the projected coordinates (the official loss's fallback value)."""

    def validate(self) -> None:
        check(self, "epochs", self.epochs >= 1, "an integer >= 1")
        check(self, "lr", self.lr > 0 and math.isfinite(self.lr), "a number > 0")
        check(self, "lr_min", 0 <= self.lr_min <= self.lr, "a number in [0, train.lr]")
        check(self, "weight_decay", self.weight_decay >= 0, "a number >= 0")
        check(self, "batch_size", self.batch_size >= 1, "an integer >= 1")
        check(self, "tau", self.tau >= 0, "a number >= 0")
        check(self, "prior_smoothing", self.prior_smoothing >= 0, "a number >= 0")
        for key in ("lambda_sem", "lambda_pa", "lambda_ka"):
            check(self, key, getattr(self, key) >= 0, "a number >= 0")
        check(self, "ka_dim", self.ka_dim >= 0, "an integer >= 0")
        check(self, "ka_temperature", self.ka_temperature > 0, "a number > 0")


@dataclass(frozen=True)
class EvaluateParams:
    """Section `evaluate`: how the two branches are fused (chosen on val with `auto`) and reported."""

    SECTION = "evaluate"
    fusion_weight: float | Literal["auto"] = 0.5
    """w in logits = w * base + (1 - w) * semantic; auto = the best of 0, 0.1, ..., 1 on the val split (train selects
    its epoch with it too)."""
    posthoc_tau: float | Literal["auto"] = 0.0
    """Post-hoc logit adjustment: subtract tau * log(class prior) from the fused logits (0 = off, as in the official
    code); auto = the best of 0, 0.25, ..., 2 on the val split."""

    def validate(self) -> None:
        if self.fusion_weight != "auto":
            check(self, "fusion_weight", 0 <= self.fusion_weight <= 1, "a number in [0, 1] or auto")
        if self.posthoc_tau != "auto":
            check(self, "posthoc_tau", self.posthoc_tau >= 0, "a number >= 0 or auto")
