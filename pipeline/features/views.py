"""Cached views: extra crops of an image encoded once and stored beside its single-view feature.

    transform = ViewTransform(encoder.preprocess, image_size=224, extra="five_crop")
    stack = transform(pil_image, seed=(dataset_seed, row))        # (1 + A, 3, S, S); [0] is the plain view

- `five_crop` (test-time augmentation, `embed.test_views`): resize the short side to S * 8/7, then the four corner
  crops and the centre crop of size S. Evaluation averages the logits over these 5 views.
- `augment:k` (`embed.train_views: k`): k random resized crops (scale 0.5..1) with random horizontal flips. Each view
  is drawn from a generator seeded by (seed, row, view), so the cache is the same whatever the batch size or worker
  count. Training samples one of the 1 + k views of each image per epoch.
"""
from __future__ import annotations

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF


def _normaliser(preprocess) -> T.Compose:
    """The tensor conversion + normalisation tail of open_clip's eval transform."""
    normalize = next(t for t in preprocess.transforms if isinstance(t, T.Normalize))
    return T.Compose([T.ToTensor(), normalize])


class ViewTransform:
    """PIL image -> (1 + A, 3, S, S): the encoder's own eval view, then the extra views."""

    def __init__(self, preprocess, image_size: int, extra: str = "none"):
        self.preprocess = preprocess
        self.size = image_size
        self.extra = extra
        self.to_tensor = _normaliser(preprocess)

    @property
    def num_extra(self) -> int:
        if self.extra == "none":
            return 0
        return 5 if self.extra == "five_crop" else int(self.extra.split(":")[1])

    def __call__(self, image, seed: tuple[int, int] = (0, 0)) -> torch.Tensor:
        views = [self.preprocess(image)]
        if self.extra == "five_crop":
            resized = TF.resize(image, int(round(self.size * 8 / 7)), interpolation=T.InterpolationMode.BICUBIC)
            views += [self.to_tensor(crop) for crop in TF.five_crop(resized, self.size)]
        elif self.extra.startswith("augment:"):
            views += [self._augmented(image, seed, k) for k in range(self.num_extra)]
        return torch.stack(views)

    def _augmented(self, image, seed: tuple[int, int], view: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(hash_seed(*seed, view))
        width, height = image.size
        area = width * height
        for _ in range(10):
            target = area * (0.5 + 0.5 * torch.rand(1, generator=generator).item())
            aspect = torch.exp(torch.empty(1).uniform_(-0.2877, 0.2877, generator=generator)).item()  # 3/4 .. 4/3
            w, h = int(round((target * aspect) ** 0.5)), int(round((target / aspect) ** 0.5))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                break
        else:
            top, left, h, w = 0, 0, height, width
        crop = TF.resized_crop(image, top, left, h, w, [self.size, self.size],
                               interpolation=T.InterpolationMode.BICUBIC)
        if torch.rand(1, generator=generator).item() < 0.5:
            crop = TF.hflip(crop)
        return self.to_tensor(crop)


def hash_seed(*parts: int) -> int:
    """A stable 63-bit seed from integers (Python's hash() is salted per process for strings, not for ints, but
    mixing keeps nearby rows' generators unrelated)."""
    value = 1469598103934665603
    for part in parts:
        value = ((value ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return value
