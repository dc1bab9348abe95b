"""A dataset's size and class list without its images: what `mdpr plan` estimates costs from.

    outline = dataset_outline(DatasetParams(name="imagenet-lt", root="data/raw/imagenet"))
    outline.splits, outline.names, outline.exact      # {"train": 115846, "val": 20000, "test": 50000}, C names, ...

The dataset is read as `mdpr prepare` reads it (build_dataset: split files, annotation files, the images' presence);
nothing is written. When it cannot be read here (no images, no train list: a plan made before downloading), the
published sizes of the standard long-tailed datasets stand in, with `exact` False and `source` saying why; the
class names come from the shipped lists (ImageNet-LT, Places-LT), and iNaturalist 2018's, which only its annotation
files hold, are replaced by placeholders of a species name's length (and a taxonomy of typical length), so prompt
token counts are estimates.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.data.datasets import DATA_DIR, build_dataset
from pipeline.data.manifest import SPLITS

PUBLISHED = {"imagenet-lt": (1000, {"train": 115_846, "val": 20_000, "test": 50_000}),
             "places-lt": (365, {"train": 62_500, "val": 7_300, "test": 36_500}),
             "inat2018": (8_142, {"train": 437_513, "test": 24_426})}
"""Classes and images per split of the standard datasets, as published (iNat: val drawn from train by prepare)."""
PLACEHOLDER_TAXONOMY = "Animalia > Chordata > Aves > Passeriformes > Fringillidae > Carduelis"
"""A taxonomy of typical length, for iNat prompts whose classes are not known here."""


@dataclass
class Outline:
    """Classes, images per split and where they come from."""

    names: list[str]                 # (C,) class names (placeholders when not exact)
    splits: dict[str, int]           # images per split
    taxonomy: list[str] | None       # (C,) taxonomy shown to the LLM (inat2018)
    exact: bool                      # read from the dataset's own files here
    source: str                      # where the counts come from

    @property
    def images(self) -> int:
        return sum(self.splits.values())


def dataset_outline(params: DatasetParams) -> Outline:
    """The dataset as prepare would see it, else its published sizes (UserError when it has none)."""
    try:
        spec = build_dataset(params)
    except UserError as err:
        if params.name not in PUBLISHED:
            raise UserError(f"plan: the dataset cannot be read here ({err}); `mdpr plan` needs it for "
                            f"dataset.name {params.name} (published sizes are known for {', '.join(PUBLISHED)}).") \
                from None
        return _published(params.name, str(err))
    splits = {split: sum(1 for row in spec.rows if row[0] == split) for split in SPLITS}
    return Outline(spec.names, {s: n for s, n in splits.items() if n}, spec.taxonomy, True, "the dataset's files")


def _published(name: str, why: str) -> Outline:
    classes, splits = PUBLISHED[name]
    taxonomy = None
    if name == "imagenet-lt":
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        names = list(IMAGENET_CLASSNAMES)
    elif name == "places-lt":
        names = [line.strip() for line in (DATA_DIR / "classnames" / "places365_classnames_clean.txt").read_text()
                 .splitlines() if line.strip()]
    else:
        names = [f"Genus{c:05d} species" for c in range(classes)]
        taxonomy = [PLACEHOLDER_TAXONOMY] * classes
    return Outline(names, dict(splits), taxonomy, False, f"published sizes (not readable here: {why})")
