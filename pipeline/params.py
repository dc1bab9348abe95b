"""Typed, strict parameters: one dataclass per section of `params.yaml`.

A stage loads only the sections it declares in `dvc.yaml` (`load_params("params.yaml", TrainParams)`), so a key it
does not read can never change its output unseen. Loading fails before any work, with one line naming the section,
the key and what is allowed, on an unknown key, a wrong type or an out-of-range value.

The `runtime` section holds speed-only knobs (device, batch size, workers). No stage declares it, so changing it
never invalidates an output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import yaml

from pipeline.errors import UserError
from pipeline.schema import check, from_dict

DIMENSIONS = ("general_appearance", "fine_grained_appearance", "functionality", "context", "differential")
DATASETS = ("synthetic-lt", "cifar10-lt", "cifar100-lt", "imagenet-lt", "places-lt", "folder", "features")


@dataclass(frozen=True)
class DatasetParams:
    """Section `dataset`: which images, which long-tailed split."""

    SECTION = "dataset"
    name: Literal[DATASETS] = "synthetic-lt"
    """Dataset kind: synthetic-lt (offline, generated), cifar10-lt, cifar100-lt, imagenet-lt, places-lt, folder, features."""
    root: str = "data/raw"
    """Where the dataset's images live (ignored by synthetic-lt, which writes under artifacts/data/images)."""
    seed: int = 0
    """Seed for sampling the long-tailed subset and for generating synthetic images."""
    imbalance_factor: float = 50.0
    """Ratio of the largest to the smallest class's training count (n_i = floor(n_max * IF^(-i/(C-1))))."""
    num_classes: int = 20
    """synthetic-lt only: number of classes (at most 96)."""
    n_max: Optional[int] = None
    """Training images of the largest class; null = the dataset's default (synthetic 200, CIFAR-10 5000, CIFAR-100 500)."""
    val_per_class: int = 10
    """synthetic-lt only: balanced validation images per class (CIFAR has no val split; ImageNet/Places-LT use theirs)."""
    test_per_class: int = 20
    """synthetic-lt only: balanced test images per class."""
    image_size: int = 64
    """synthetic-lt only: side of the generated square images, in pixels."""
    download: bool = False
    """cifar*: download with torchvision when the files are missing (needs internet)."""
    train_list: Optional[str] = None
    """imagenet-lt: path of ImageNet_LT_train.txt (not shipped; comes with the ImageNet-LT release). places-lt: optional override."""
    split_file: Optional[str] = None
    """folder: optional CSV `path,split` (split in train/val/test) relative to root; null = every image is train, 20% per class held out as test."""
    features_file: Optional[str] = None
    """features: path of a user-provided HDF5 or NPZ with precomputed CLIP features (see README)."""

    def validate(self) -> None:
        check(self, "imbalance_factor", self.imbalance_factor >= 1, "a number >= 1")
        check(self, "num_classes", 2 <= self.num_classes <= 96, "an integer in 2..96")
        check(self, "n_max", self.n_max is None or self.n_max >= 1, "null or an integer >= 1")
        check(self, "val_per_class", self.val_per_class >= 0, "an integer >= 0")
        check(self, "test_per_class", self.test_per_class >= 1, "an integer >= 1")
        check(self, "image_size", 8 <= self.image_size <= 1024, "an integer in 8..1024")


@dataclass(frozen=True)
class ClipParams:
    """Section `clip`: the frozen encoder."""

    SECTION = "clip"
    model: str = "mdpr-tiny"
    """open_clip architecture name (ViT-B-16, ...), or mdpr-tiny, the small random-init model shipped for demos/tests."""
    pretrained: str = "none"
    """A pretrained tag (openai, laion2b_s34b_b79k), a local checkpoint path, or none for random init."""
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    """Encoder precision; fp16/bf16 are for GPUs (outputs are stored as float32 or float16, see embed.store_dtype)."""
    templates: Literal["simple", "ensemble"] = "ensemble"
    """Class-name prompts: simple = 'a photo of a {}.', ensemble = CLIP's 7 best ImageNet templates (mean embedding)."""
    seed: int = 0
    """Seed of the random init when pretrained is none (so every run builds the same encoder)."""


@dataclass(frozen=True)
class EmbedParams:
    """Section `embed`: how image features are stored."""

    SECTION = "embed"
    store_dtype: Literal["float32", "float16"] = "float32"
    """dtype of the stored features (float16 halves the file; cosines move by ~1e-4)."""
    on_error: Literal["fail", "skip"] = "fail"
    """An unreadable image: fail (name it and stop) or skip (drop it and list it in artifacts/features/skipped.json)."""
    test_views: Literal["none", "five_crop"] = "none"
    """Extra cached test-time views: five_crop stores (N, 5, d) views and evaluation averages logits over them."""
    train_views: int = 0
    """Augmented views cached per training image (0 = none); training samples one view per image per epoch."""

    def validate(self) -> None:
        check(self, "train_views", 0 <= self.train_views <= 64, "an integer in 0..64")


@dataclass(frozen=True)
class RuntimeParams:
    """Section `runtime`: speed-only knobs. No stage declares it, so it never invalidates an output."""

    SECTION = "runtime"
    device: str = "auto"
    """auto (cuda when present, else cpu), cpu, cuda or cuda:N."""
    batch_size: int = 64
    """Images or texts per encoder forward."""
    num_workers: int = 2
    """DataLoader workers decoding images (0 = in the main process)."""
    launcher: Literal["none", "torchrun"] = "none"
    """embed_images only: none runs one process; torchrun runs `torchrun --nproc_per_node runtime.nproc_per_node`."""
    nproc_per_node: int = 1
    """Processes per node when runtime.launcher is torchrun."""

    def validate(self) -> None:
        check(self, "batch_size", self.batch_size >= 1, "an integer >= 1")
        check(self, "num_workers", self.num_workers >= 0, "an integer >= 0")
        check(self, "nproc_per_node", self.nproc_per_node >= 1, "an integer >= 1")
        ok = self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        check(self, "device", ok, "auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class ConfusionParams:
    """Section `confusion`: zero-shot confusion analysis on the training split."""

    SECTION = "confusion"
    top_k: int = 3
    """Most-confused other classes kept per class."""

    def validate(self) -> None:
        check(self, "top_k", self.top_k >= 1, "an integer >= 1")


@dataclass(frozen=True)
class LLMParams:
    """Section `llm`: who writes the descriptions."""

    SECTION = "llm"
    backend: Literal["offline", "openai", "file"] = "offline"
    """offline: deterministic text from class names; openai: any OpenAI-compatible server; file: import library.file."""
    base_url: Optional[str] = None
    """Server URL, e.g. http://127.0.0.1:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama); null = OpenAI."""
    model: str = "gpt-4o-mini"
    """Model name sent to the server (also part of the cache key)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (the key itself is never written anywhere)."""
    temperature: float = 0.0
    """Sampling temperature."""
    max_tokens: int = 80
    """Upper bound on tokens per answer."""
    seed: int = 0
    """Sampling seed sent to servers that honour it (part of the cache key)."""
    concurrency: int = 8
    """Requests in flight at once."""
    timeout_s: float = 60.0
    """Seconds before one request is abandoned and retried."""
    max_retries: int = 4
    """Retries per request on 429, 5xx, timeouts and connection errors (exponential backoff, honours Retry-After)."""
    cache_dir: str = ".cache/llm"
    """Response cache (diskcache, JSON, no eviction): a rerun makes zero requests; an interrupted run resumes."""

    def validate(self) -> None:
        check(self, "temperature", 0 <= self.temperature <= 2, "a number in [0, 2]")
        check(self, "max_tokens", self.max_tokens >= 8, "an integer >= 8")
        check(self, "concurrency", self.concurrency >= 1, "an integer >= 1")
        check(self, "timeout_s", self.timeout_s > 0, "a number > 0")
        check(self, "max_retries", self.max_retries >= 0, "an integer >= 0")
        check(self, "api_key_env", self.api_key_env.isidentifier(), "an environment variable name")


@dataclass(frozen=True)
class LibraryParams:
    """Section `library`: what the semantic library holds."""

    SECTION = "library"
    dimensions: tuple[str, ...] = DIMENSIONS
    """Dimensions described for every class (any of the five, in this order)."""
    per_dimension: int = 1
    """Descriptions per class and dimension (V = len(dimensions) * per_dimension)."""
    file: Optional[str] = None
    """llm.backend file: JSON {class_name: [descriptions]} to import."""
    missing: Literal["error", "offline"] = "error"
    """llm.backend file: a class absent from the file is an error, or gets offline descriptions (source: offline)."""
    max_reasks: int = 2
    """Times an invalid answer (empty, refusal, too long for CLIP) is asked again before the explicit fallback."""

    def validate(self) -> None:
        bad = [d for d in self.dimensions if d not in DIMENSIONS]
        check(self, "dimensions", bool(self.dimensions) and not bad and len(set(self.dimensions)) == len(self.dimensions),
               f"a non-empty list of distinct names from {', '.join(DIMENSIONS)}")
        check(self, "per_dimension", 1 <= self.per_dimension <= 20, "an integer in 1..20")
        check(self, "max_reasks", self.max_reasks >= 0, "an integer >= 0")


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
    """Router value/output projections start at the identity (semantic branch = zero-shot with the library) or random (reference code)."""

    def validate(self) -> None:
        check(self, "heads", self.heads >= 1, "an integer >= 1")
        check(self, "dropout", 0 <= self.dropout < 1, "a number in [0, 1)")
        check(self, "residual_scale", self.residual_scale >= 0, "a number >= 0")
        check(self, "adapter_ratio", 0 <= self.adapter_ratio <= 1, "a number in [0, 1]")
        check(self, "logit_scale", 0 < self.logit_scale <= 100, "a number in (0, 100]")


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


SECTIONS = {cls.SECTION: cls for cls in (DatasetParams, ClipParams, EmbedParams, RuntimeParams, ConfusionParams,
                                         LLMParams, LibraryParams, ModelParams, TrainParams, EvaluateParams)}


def read_yaml(path: str | Path) -> dict:
    """The whole params file as a dict (an error names the file when it is missing or not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params: {path} not found; run from the project root or pass --params PATH.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"params: {path} is not valid YAML ({str(err).splitlines()[0]}).") from None
    if not isinstance(data, dict):
        raise UserError(f"params: {path} must be a mapping of sections (dataset:, clip:, ...).")
    return data


def load_params(path: str | Path, cls: type):
    """Load one section of the params file into its strict dataclass (missing section = all defaults)."""
    data = read_yaml(path)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise UserError(f"params: unknown section {unknown[0]!r} in {path}; allowed sections: {', '.join(SECTIONS)}.")
    return from_dict(cls, data.get(cls.SECTION) or {})


__all__ = ["SECTIONS", "DIMENSIONS", "DATASETS", "load_params", "from_dict", "read_yaml"] + \
    [cls.__name__ for cls in SECTIONS.values()]
