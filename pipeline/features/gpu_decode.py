"""`embed.decode: gpu`: JPEG files decoded on the CUDA device (torchvision.io.decode_jpeg, nvJPEG), resized there.

    decode, reason = decode_plan(embed_params, dataset_params, encoder.device, transform)  # None: on the CPU
    rows = embed.FileBytesRows(ids, decode.root, transform, start, stop, seed)  # workers only read file bytes
    views, errors = decode(items, errors, batch_ids)                  # (B', 1, 3, S, S) on the device

DataLoader workers read each file's bytes; the device decodes a batch of JPEGs in one call and applies the encoder's
eval view on the device: resize of the short side to S (bicubic, antialiased), centre crop S x S, scaling to [0, 1]
and the encoder's mean/std normalisation, i.e. open_clip's eval transform on tensors instead of PIL images (pixel
values differ from PIL's resampling by rounding, so the features differ slightly: the param is part of the cache
identity). A file that is not a JPEG is decoded and transformed by PIL in the worker, as with `decode: cpu`; a JPEG
the device cannot decode (CMYK, progressive on old drivers) is decoded by PIL in the main process. Extra cached views
(five crops, augmentations), datasets without image files (CIFAR) and runs without a CUDA device decode on the CPU,
and the stage says so once on stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF

from pipeline.data.images import image_root

JPEG_MAGIC = b"\xff\xd8"


def decode_plan(embed_params, dataset_params, device: torch.device, transform):
    """(DeviceJpegViews, None) when this split decodes on the device; else (None, why not) -- why is None when
    embed.decode is cpu."""
    if embed_params.decode != "gpu":
        return None, None
    if device.type != "cuda":
        return None, f"no CUDA GPU is in use (device {device})"
    if transform.num_extra:
        return None, "extra cached views (embed.test_views / embed.train_views) are made on the CPU"
    if dataset_params.name in ("cifar10-lt", "cifar100-lt"):
        return None, f"{dataset_params.name} has no image files"
    try:
        return DeviceJpegViews(transform.preprocess, transform.size, device, image_root(dataset_params)), None
    except ValueError as err:
        return None, str(err)


def say_fallback(reason: str | None) -> None:
    """The one stderr line of a run asked to decode on the GPU that decodes (some splits) on the CPU."""
    if reason:
        print(f"embed_images: embed.decode is gpu but {reason}; decoding on the CPU.", file=sys.stderr)


def collate_items(batch):
    """Keep the per-row items as a list (JPEG bytes and CPU stacks mixed); errors as in collate_views."""
    return [item for item, _err in batch], [err for _item, err in batch]


class DeviceJpegViews:
    """Decodes a batch's JPEG bytes on the device and applies the encoder's eval view there."""

    def __init__(self, preprocess, size: int, device: torch.device, root: Path):
        steps = {type(step).__name__: step for step in preprocess.transforms}
        resize, normalize = steps.get("Resize"), steps.get("Normalize")
        if resize is None or "CenterCrop" not in steps or normalize is None or not isinstance(resize.size, int):
            raise ValueError("the encoder's eval transform is not resize + centre crop + normalise")
        self.size, self.device, self.root = size, device, Path(root)
        self.interpolation = resize.interpolation
        self.mean = torch.tensor(normalize.mean, device=device)[:, None, None]
        self.std = torch.tensor(normalize.std, device=device)[:, None, None]
        self.cpu_view = T.Compose([T.ToTensor(), T.Normalize(normalize.mean, normalize.std)])

    def view(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) uint8 on the device -> (3, S, S) normalised float32."""
        image = TF.resize(image, self.size, interpolation=self.interpolation, antialias=True)
        image = TF.center_crop(image, [self.size, self.size]).float().div_(255).clamp_(0, 1)
        return (image - self.mean) / self.std

    def __call__(self, items: list, errors: list[str], ids: list[str]) -> tuple[torch.Tensor | None, list[str]]:
        """(B', 1, 3, S, S) views of the readable rows and the errors list (a JPEG no decoder reads is an error)."""
        from torchvision.io import ImageReadMode, decode_jpeg

        jpegs = [i for i, item in enumerate(items) if item is not None and item.dim() == 1]
        decoded = {}
        try:
            images = decode_jpeg([items[i] for i in jpegs], mode=ImageReadMode.RGB, device=self.device)
            decoded = dict(zip(jpegs, images))
        except RuntimeError:  # one undecodable file fails the batch: decode these on the CPU, one by one
            for i in jpegs:
                try:
                    decoded[i] = torch.from_numpy(_pil_rgb(items[i])).permute(2, 0, 1).to(self.device)
                except Exception as err:  # noqa: BLE001
                    errors[i] = f"{ids[i]}: {type(err).__name__}: {str(err)[:160]}"
        views = []
        for i, item in enumerate(items):
            if errors[i] or item is None:
                continue
            views.append(self.view(decoded[i])[None] if i in decoded else item.to(self.device))
        return (torch.stack(views) if views else None), errors


def _pil_rgb(data: torch.Tensor):
    """JPEG bytes (1-D uint8) decoded by PIL as an (H, W, 3) uint8 array."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data.numpy().tobytes())) as image:
        return np.asarray(image.convert("RGB")).copy()
