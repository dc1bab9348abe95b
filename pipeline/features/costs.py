"""What the feature caches will weigh on disk, and how long the encoder takes per image and per text on this device.

    dim, side = encoder_shape(clip_params)                        # 512, 224 for ViT-B-16 (no weights read)
    sizes = cache_bytes(splits, classes=1000, views=5, dim=512, embed=embed_params)   # {"images.h5": ..., ...}
    timing = time_encoder(clip_params, runtime_params, images=8, texts=["a photo of a tench.", ...])

`time_encoder` builds the architecture with random weights (the same compute as the pretrained ones, and nothing is
downloaded) at clip.precision on runtime.device (fp16 on a CPU runs in fp32, as `mdpr predict` does), encodes one
image and one text to warm up, then times `images` random-pixel images at the encoder's input size in one batch and
the texts likewise. JPEG decoding and resizing are not included (embed_images does them in DataLoader workers, in
parallel with the encoder). Sizes count the arrays the stages write (HDF5 adds a few KB of metadata).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace

from pipeline.config.data_params import ClipParams, EmbedParams, RuntimeParams

FLOAT_BYTES = {"float32": 4, "float16": 2}
ID_BYTES = 64
"""Assumed bytes per stored image id (a relative path like train_val2018/Plantae/7477/3b60...jpg)."""


def encoder_shape(clip: ClipParams) -> tuple[int, int]:
    """(embedding width d, input image side) from open_clip's config alone."""
    from pipeline.features.clip import encoder_identity

    identity, dim = encoder_identity(replace(clip, pretrained="none"))
    return dim, json.loads(identity["image_size"])[0]


def image_views(splits: dict[str, int], embed: EmbedParams) -> int:
    """Image views embed_images encodes: one per image, plus train_views per train image and 5 crops per test
    image with embed.test_views five_crop (pipeline/features/embed.py: extra_views)."""
    extra = splits.get("train", 0) * embed.train_views + splits.get("test", 0) * 5 * (embed.test_views == "five_crop")
    return sum(splits.values()) + extra


def cache_bytes(splits: dict[str, int], classes: int, views: int, dim: int, embed: EmbedParams) -> dict[str, int]:
    """Bytes of images.h5 (features, labels, ids), classes.h5, library.h5 and model.pt (its weights and the cached
    class and library features it keeps as buffers)."""
    images = image_views(splits, embed) * dim * FLOAT_BYTES[embed.store_dtype] + sum(splits.values()) * (8 + ID_BYTES)
    library = classes * views * (dim * 4 + 1 + 4)  # features, mask, prior
    router = 4 * (4 * dim * dim + 4 * dim)  # attention in/out projections and biases
    model = 4 * (2 * classes * dim) + library + router  # residual, class features, library buffers
    return {"images.h5": images, "classes.h5": classes * dim * 4, "library.h5": library, "model.pt": model}


def time_encoder(clip: ClipParams, runtime: RuntimeParams, images: int, texts: list[str]) -> dict:
    """Seconds per image and per text of the encoder on runtime.device, measured now (see the module docstring)."""
    import torch

    from pipeline.features.clip import load_encoder

    encoder = load_encoder(replace(clip, pretrained="none"), runtime.device, fp16_on_cpu="fp32")
    _, side = encoder_shape(clip)
    pixels = torch.rand(images, 3, side, side, generator=torch.Generator().manual_seed(0))
    encoder.encode_image_batch(pixels[:1])
    encoder.encode_texts(texts[:1], runtime.batch_size)
    start = time.perf_counter()
    encoder.encode_image_batch(pixels)
    image_s = (time.perf_counter() - start) / images
    start = time.perf_counter()
    encoder.encode_texts(texts, runtime.batch_size)
    text_s = (time.perf_counter() - start) / len(texts)
    return {"device": str(encoder.device), "precision": str(encoder.input_dtype).removeprefix("torch."),
            "probe_images": images, "probe_texts": len(texts), "s_per_image": image_s, "s_per_text": text_s}
