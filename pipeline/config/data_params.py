"""Params sections of the inputs: the dataset, the frozen encoder, how features are stored, speed-only runtime knobs.

    dataset = load_params("params.yaml", DatasetParams)     # pipeline.config.params.load_params

Each section is a strict, frozen dataclass; the docstring line under each field is its documentation (README table).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from pipeline.config.schema import check

DATASETS = ("synthetic-lt", "cifar10-lt", "cifar100-lt", "imagenet-lt", "places-lt", "folder", "features")

@dataclass(frozen=True)
class DatasetParams:
    """Section `dataset`: which images, which long-tailed split."""

    SECTION = "dataset"
    name: Literal[DATASETS] = "synthetic-lt"
    """Dataset kind: synthetic-lt (offline, generated), cifar10-lt, cifar100-lt, imagenet-lt, places-lt, folder,
    features."""
    root: str = "data/raw"
    """What the dataset reads, and a DVC dependency of prepare and embed_images (a change in it reruns them): the
    image folder (folder, imagenet-lt, places-lt), the folder holding CIFAR's python archive (cifar*), or the folder
    holding the features file, or the file itself (features). Unused by synthetic-lt; the default data/raw is a
    committed folder holding only a README, so a fresh clone runs."""
    seed: int = 0
    """Seed for sampling the long-tailed subset, carving the val split and generating synthetic images."""
    imbalance_factor: float = 50.0
    """Ratio of the largest to the smallest class's training count (n_i = floor(n_max * IF^(-i/(C-1))))."""
    num_classes: int = 20
    """synthetic-lt only: number of classes (at most 96)."""
    n_max: Optional[int] = None
    """Training images of the largest class; null = the dataset's default (synthetic 200, CIFAR-10 5000, CIFAR-100
    500)."""
    val_per_class: int = 10
    """Balanced validation images per class, never test images. synthetic-lt generates them; cifar*-lt takes them
    from the CIFAR training images the long-tailed subset leaves out (the head class, which would use all of its
    images, keeps at most 500 - val_per_class on CIFAR-100, 5000 - val_per_class on CIFAR-10); folder and features
    without val images carve min(val_per_class, half the smallest class) training images of every class;
    imagenet-lt and places-lt use their official val split (20 per class) and ignore this."""
    test_per_class: int = 20
    """synthetic-lt only: balanced test images per class."""
    image_size: int = 64
    """synthetic-lt only: side of the generated square images, in pixels."""
    download: bool = False
    """cifar*: download with torchvision into dataset.root when the files are missing (needs internet)."""
    train_list: Optional[str] = None
    """imagenet-lt: path of ImageNet_LT_train.txt (not shipped; comes with the ImageNet-LT release), under
    dataset.root or data/splits/. places-lt: optional override of data/splits/Places_LT_train.txt."""
    split_file: Optional[str] = None
    """folder: optional CSV `path,split` (split in train/val/test) relative to root; null = every image is train,
    20% per class held out as test and a balanced val carved from the rest."""
    features_file: Optional[str] = None
    """features: path of a user-provided HDF5 or NPZ with precomputed CLIP features (see README), under
    dataset.root (or equal to it)."""
    train_counts_file: Optional[str] = None
    """Real training frequencies per class, overriding the train split's counts for the groups, the
    logit-adjustment prior and the plots: JSON (a list of C counts in label order, or {class name: count}) or CSV
    (columns label or class, and count), under dataset.root or data/splits/ (e.g.
    data/splits/ImageNet_LT_train_cls_freq.json); null = the imported file's train_counts, else the train split."""
    many_above: int = 100
    """A class with more training images than this is `many` (standard protocol: 100)."""
    few_below: int = 20
    """A class with fewer training images than this is `few` (standard: 20); the rest are `medium`."""

    def validate(self) -> None:
        check(self, "imbalance_factor", self.imbalance_factor >= 1, "a number >= 1")
        check(self, "num_classes", 2 <= self.num_classes <= 96, "an integer in 2..96")
        check(self, "n_max", self.n_max is None or self.n_max >= 1, "null or an integer >= 1")
        check(self, "val_per_class", self.val_per_class >= 1, "an integer >= 1 (every dataset has a val split)")
        check(self, "test_per_class", self.test_per_class >= 1, "an integer >= 1")
        check(self, "image_size", 8 <= self.image_size <= 1024, "an integer in 8..1024")
        check(self, "few_below", 0 <= self.few_below <= self.many_above + 1,
              f"an integer in 0..dataset.many_above + 1 ({self.many_above + 1})")


@dataclass(frozen=True)
class ClipParams:
    """Section `clip`: the frozen encoder."""

    SECTION = "clip"
    model: str = "mdpr-tiny"
    """open_clip architecture name (ViT-B-16, ...), or mdpr-tiny, the small random-init model shipped for
    demos/tests."""
    pretrained: str = "none"
    """A pretrained tag (openai, laion2b_s34b_b79k), a local checkpoint file under data/checkpoints/ (a DVC dependency
    of every stage that loads the encoder), or none for random init."""
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    """Encoder precision; fp16/bf16 are for GPUs (outputs are stored as float32 or float16, see embed.store_dtype)."""
    templates: Literal["simple", "ensemble"] = "ensemble"
    """Class-name prompts: simple = 'a photo of a {}.', ensemble = CLIP's 7 best ImageNet templates (mean embedding)."""
    seed: int = 0
    """Seed of the random init when pretrained is none (so every run builds the same encoder)."""
    space_check: Literal["refuse", "warn"] = "refuse"
    """features imports: embed_classes checks that this encoder shares the imported features' space and refuses when
    not: with class_features, on a sample of classes first (mean cosine < 0.5 or top-1 agreement < 50%); without,
    zero-shot on imported image features must beat chance by 3 binomial standard deviations (see README). warn runs
    anyway and every later summary (train, evaluate, metrics.json, reports) says the check failed."""


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
    decode: Literal["cpu", "gpu"] = "cpu"
    """Where JPEG files are decoded: cpu (PIL in DataLoader workers) or gpu (torchvision.io.decode_jpeg on the CUDA
    device, plain view only; falls back to cpu with a message without a GPU, for extra views and for CIFAR)."""

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
