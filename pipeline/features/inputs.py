"""What the encoder needs before a run: its weights where open_clip will find them, a GPU for fp16, disk for features.

    weights_finding(clip)                  # cached / local file / random init: ok; hub reachable: note; else missing
    gpu_finding(clip, runtime)             # fp16 with no CUDA GPU visible: missing (embed_images would refuse)
    feature_bytes(counts, clip, embed)     # bytes images.h5, its DVC cache copy and the embedding chunks take

Nothing is downloaded or built: the weights are looked up in the local Hugging Face cache (weights.py), and, with
`probe`, the hub is asked once whether it answers (weights.HUB_TIMEOUT_S).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.config.data_params import ClipParams, EmbedParams, RuntimeParams
from pipeline.core.findings import MISSING, NOTE, OK, Finding
from pipeline.features import weights

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
FIVE_CROP_VIEWS = 5
"""Extra views a test image gets with embed.test_views: five_crop (pipeline/features/views.py)."""


def weights_finding(clip: ClipParams, probe: bool = True) -> Finding:
    """Whether the CLIP weights clip.pretrained names can be loaded without a failed run."""
    import open_clip

    from pipeline.features.clip import register_configs

    register_configs()
    name = f"{clip.model} / {clip.pretrained}"
    if clip.model not in open_clip.list_models():
        return Finding("CLIP weights", MISSING, f"clip.model = {clip.model!r} is not an open_clip architecture",
                       "see open_clip.list_models() (e.g. ViT-B-16-quickgelu) or use mdpr-tiny")
    if clip.pretrained.lower() == "none":
        return Finding("CLIP weights", OK, f"{name}: random init from clip.seed, nothing to load")
    path = Path(clip.pretrained)
    if path.suffix in CHECKPOINT_SUFFIXES or path.exists():
        if path.is_file():
            return Finding("CLIP weights", OK, f"{name}: checkpoint file")
        return Finding("CLIP weights", MISSING, f"checkpoint file {clip.pretrained} not found",
                       "put the checkpoint there or point clip.pretrained at it")
    tags = open_clip.list_pretrained_tags_by_model(clip.model)
    if clip.pretrained not in tags:
        return Finding("CLIP weights", MISSING, f"clip.pretrained = {clip.pretrained!r} is not a tag of {clip.model}",
                       f"use one of {', '.join(tags) or 'none known'}, or a local checkpoint file")
    local = weights.cached_weights(clip.model, clip.pretrained)
    if local:
        return Finding("CLIP weights", OK, f"{name}: in the local Hugging Face cache ({local})")
    repo, names = weights.weight_files(clip.model, clip.pretrained)
    reason = weights.hub_unreachable(repo, names[-1]) if probe else None
    if reason:
        return Finding("CLIP weights", MISSING, f"{name}: {weights.not_cached(repo, names)} and the hub cannot be "
                       f"reached ({reason})", weights.fetch_fix(repo, names))
    return Finding("CLIP weights", NOTE, f"{name}: not cached yet; open_clip downloads {repo} into the Hugging Face "
                   "cache on the first run" + ("" if probe else " (hub not probed)"))


def gpu_finding(clip: ClipParams, runtime: RuntimeParams) -> Finding:
    """A CUDA GPU where the params need one (fp16 encoding, runtime.device cuda), or a note of where encoding runs."""
    import torch

    visible = torch.cuda.device_count()
    if visible:
        return Finding("GPU", OK, f"{visible} CUDA GPU(s) visible ({torch.cuda.get_device_name(0)})")
    wants = [why for why, needed in ((f"clip.precision = {clip.precision}", clip.precision == "fp16"),
                                     (f"runtime.device = {runtime.device}", runtime.device.startswith("cuda")))
             if needed]
    if wants:
        return Finding("GPU", MISSING, f"no CUDA GPU visible, but {' and '.join(wants)} needs one",
                       "run on a machine with a GPU, or set clip.precision: fp32 and runtime.device: auto (CPU: slow "
                       "for a ViT over a real dataset)")
    return Finding("GPU", NOTE, "no CUDA GPU visible: the encoder runs on the CPU")


def embed_dim(clip: ClipParams) -> int | None:
    """The encoder's feature width d from its open_clip config (None: not an architecture open_clip knows)."""
    import open_clip

    from pipeline.features.clip import register_configs

    register_configs()
    config = open_clip.get_model_config(clip.model)
    return int(config["embed_dim"]) if config else None


def feature_bytes(counts: dict[str, int], clip: ClipParams, embed: EmbedParams) -> int | None:
    """Bytes the image features take on disk at their peak: the float32 embedding chunks under .cache/embed, plus
    images.h5 and its copy in the DVC cache at embed.store_dtype (None when d is unknown)."""
    dim = embed_dim(clip)
    if dim is None:
        return None
    views = (counts.get("train", 0) * (1 + embed.train_views) + counts.get("val", 0)
             + counts.get("test", 0) * (1 + (FIVE_CROP_VIEWS if embed.test_views == "five_crop" else 0)))
    stored = 2 if embed.store_dtype == "float16" else 4
    return views * dim * (4 + 2 * stored)
