"""Reading manifest ids back as RGB images, whatever the dataset kind (ids: see pipeline/data/datasets.py).

    reader = ImageReader(dataset_params)         # picklable: each DataLoader worker holds its own
    image = reader("train/00012.png")            # PIL RGB image
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.core.findings import plain_reason
from pipeline.core.paths import SYNTHETIC_IMAGES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
"""File suffixes read as images (folder datasets, `mdpr predict` folders)."""


def cifar_dataset(params: DatasetParams, train: bool):
    """The torchvision CIFAR dataset object (downloads only when dataset.download is true)."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if params.name == "cifar10-lt" else torchvision.datasets.CIFAR100
    try:
        return cls(params.root, train=train, download=params.download)
    except RuntimeError as err:
        raise UserError(f"dataset {params.name}: {err} (root {params.root}); set dataset.download: true on a "
                        "machine with internet, or put the extracted CIFAR python folder under dataset.root.") from None
    except OSError as err:
        raise UserError(f"dataset {params.name}: the CIFAR python archive is not under {params.root} and its download "
                        f"from {cls.url} failed ({plain_reason(err)}); this machine may have no internet: download "
                        f"{cls.filename} elsewhere and extract it under {params.root} (it holds {cls.base_folder}/), "
                        "or run prepare where there is internet.") from None


def image_root(params: DatasetParams) -> Path:
    """The folder manifest ids are relative to."""
    return SYNTHETIC_IMAGES if params.name == "synthetic-lt" else Path(params.root)


class ImageReader:
    """Opens manifest ids as RGB PIL images; picklable, so DataLoader workers can each hold one."""

    def __init__(self, params: DatasetParams):
        self.params = params
        self._cifar = {}

    def __call__(self, image_id: str):
        from PIL import Image

        if self.params.name in ("cifar10-lt", "cifar100-lt"):
            split, index = image_id.split("/")
            if split not in self._cifar:
                self._cifar[split] = cifar_dataset(self.params, train=split == "train").data
            return Image.fromarray(self._cifar[split][int(index)])
        return open_rgb(image_root(self.params) / image_id)


def open_rgb(path: str | Path):
    """One image file as an RGB PIL image; 16-bit grey images are scaled to 8 bits (see `to_rgb`)."""
    from PIL import Image

    with Image.open(path) as image:
        return to_rgb(image)


def to_rgb(image):
    """An RGB copy of a PIL image. 16-bit grey (mode I;16*, or I as older Pillow reads 16-bit PNGs) is scaled from
    0..65535 to 0..255: PIL's own convert would clip every value above 255, turning the image almost white. Other
    modes (8-bit, 16-bit RGB, which Pillow already reduces to 8 bits, palette, alpha) go through PIL's convert."""
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode == "I":
        grey = np.asarray(image).astype(np.float64)  # (H, W)
        image = Image.fromarray(np.round(np.clip(grey, 0, 65535) / 257).astype(np.uint8))
    return image.convert("RGB")


def collect_images(inputs: list[str]) -> list[Path]:
    """Files as given, folders searched recursively for image suffixes (sorted); missing paths are an error."""
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"predict: {item} is not a file or folder.")
    if not found:
        raise UserError(f"predict: no image ({', '.join(sorted(IMAGE_SUFFIXES))}) under {', '.join(inputs)}.")
    return found
