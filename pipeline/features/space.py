"""One embedding space: imported features checked against the encoder that will encode the class names and descriptions.

    agreement = space_agreement(own, imported, names, rows)   # own (S, d) for classes `rows`, imported (C, d)
    zero_shot = zero_shot_check(image_feats, labels, class_feats)   # (n, d), (n,), (C, d) -> ZeroShotCheck
    status = check_space(agreement, clip_params, classes.get("features_file", {}))   # UserError, or warns with `warn`

A features import (`dataset.name: features`) brings image features made by some CLIP. The class names and the
library descriptions are then encoded by `clip.model` / `clip.pretrained`: if that is another model, another tag or a
random init, texts and images live in different spaces and every text-based score (zero-shot, semantic, MDPR) is
noise. `embed_classes` checks every import, in one of two ways:

- **With `class_features`** (class-name text embeddings made with the image features): it encodes the class names of
  a seeded sample of SAMPLE_CLASSES classes with its own encoder and compares them with the imported ones: the mean
  cosine of each class's two embeddings (same model: about 0.9 to 1 even with other prompt templates; unrelated
  spaces: about 0) and the top-1 agreement (the share of sampled classes whose own embedding is nearest, among all C
  imported rows, to their own imported one; chance is 1/C). The sample decides when it is clear: when, for either
  measure, the upper end of its Z-interval (the Wilson interval for the agreement, the mean +- Z standard errors for
  the cosine) lies below the threshold, it refuses at once, having encoded SAMPLE_CLASSES classes' prompts only;
  when both lower ends lie above, it passes. Otherwise the remaining classes are encoded and all C decide. The
  imported class features are what classes.h5 keeps either way.
- **Without them**, the encoder's own class-name embeddings are the classifier, so it must classify the imported
  image features: zero-shot top-1 on a seeded sample of at most 2,000 imported val features (train when the file
  has no val split; `prepare` keeps it: pipeline/data/imported.py, SPACE_SAMPLE_ROWS) must be clearly above chance.
  Chance is the accuracy of a prediction independent of the label with the same label and prediction frequencies,
  p0 = sum_c share_label(c) * share_pred(c) (1/C for balanced labels; higher when an unrelated text tower sends most
  images to a few classes of a long-tailed split); under it the number of correct predictions of n images is
  Binomial(n, p0). The check passes when correct > n p0 + Z sqrt(n p0 (1 - p0)), Z = 3 binomial standard
  deviations: an unrelated encoder passes by luck about once in 740 runs (one-sided normal tail), while CLIP
  classifying its own image features scores many times chance. The margin is statistical, not a quality bar: a
  weak but real match passes.

Below the thresholds the stage refuses with one line naming both models, unless `clip.space_check: warn`: then it
warns, and the verdict (`failed: ...`) is kept in the classes.h5 and library.h5 attributes, metrics.json's
`space_check`, and a `warning:` line of train, evaluate, `mdpr report` and the HTML report (space_verdict.py).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from pipeline.config.data_params import ClipParams
from pipeline.core.errors import UserError

MIN_MEAN_COSINE = 0.5
"""Least mean cosine between the encoder's class-name embeddings and the imported ones."""
MIN_TOP1_AGREEMENT = 0.5
"""Least share of classes whose own embedding is nearest to their imported one."""
SAMPLE_CLASSES = 64
"""Classes whose names are encoded first when the import brings class features (all of them when C is smaller)."""
Z = 3.0
"""Standard deviations: of the binomial count above chance (zero-shot check); of the sample's estimates (sample)."""
CHUNK = 1024
"""Classes compared at once (memory holds CHUNK x C cosines)."""


@dataclass(frozen=True)
class Agreement:
    """How far two sets of class-name embeddings share one space (on `classes` classes, of `of` in all)."""

    mean_cosine: float
    top1: float
    classes: int = 0
    of: int = 0
    cosine_sd: float = 0.0

    @property
    def ok(self) -> bool:
        return self.mean_cosine >= MIN_MEAN_COSINE and self.top1 >= MIN_TOP1_AGREEMENT

    def clear(self) -> bool:
        """Whether this (sample) agreement decides: each measure's Z-interval lies on one side of its threshold."""
        n = max(self.classes, 1)
        low, high = _wilson(self.top1, n)
        margin = Z * self.cosine_sd / math.sqrt(n)
        cosine_low, cosine_high = self.mean_cosine - margin, self.mean_cosine + margin
        fails = high < MIN_TOP1_AGREEMENT or cosine_high < MIN_MEAN_COSINE
        passes = low >= MIN_TOP1_AGREEMENT and cosine_low >= MIN_MEAN_COSINE
        return self.classes == self.of or fails or passes

    @property
    def requirement(self) -> str:
        return f"needs >= {MIN_MEAN_COSINE} and >= {MIN_TOP1_AGREEMENT:.0%}"

    def __str__(self) -> str:
        sample = f" on a sample of {self.classes} of {self.of} classes" if self.classes < self.of else ""
        return f"mean cosine {self.mean_cosine:.2f}, top-1 agreement {self.top1:.0%}{sample}"


@dataclass(frozen=True)
class ZeroShotCheck:
    """Zero-shot top-1 of the encoder's class-name embeddings on n imported image features, against chance."""

    accuracy: float
    chance: float
    n: int

    @property
    def needed(self) -> float:
        """The accuracy to exceed: chance plus Z binomial standard deviations of the share of correct answers."""
        return self.chance + Z * math.sqrt(self.chance * (1 - self.chance) / max(self.n, 1))

    @property
    def ok(self) -> bool:
        return self.accuracy > self.needed

    @property
    def requirement(self) -> str:
        return f"needs > {self.needed:.1%}: {Z:g} binomial standard deviations above chance"

    def __str__(self) -> str:
        return f"zero-shot top-1 {self.accuracy:.1%} on {self.n} imported image features, chance {self.chance:.1%}"


def _wilson(share: float, n: int) -> tuple[float, float]:
    """Wilson score interval of a binomial share observed on n trials, at Z standard deviations."""
    centre = (share + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(share * (1 - share) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def sample_classes(num_classes: int, seed: int = 0) -> np.ndarray:
    """The (sorted) indices of the classes encoded first: SAMPLE_CLASSES of them, seeded, or all when fewer."""
    if num_classes <= SAMPLE_CLASSES:
        return np.arange(num_classes)
    return np.sort(np.random.default_rng(seed).choice(num_classes, SAMPLE_CLASSES, replace=False))


def space_agreement(own: np.ndarray, imported: np.ndarray, names: list[str], rows=None) -> Agreement:
    """Mean cosine of matching rows, and the share of classes whose nearest imported row (of all C) has their name
    (repeated names, such as ImageNet's two 'missile', count as agreeing with either); `own` holds the encoder's
    embeddings of the classes `rows` (all classes when None)."""
    imported = np.asarray(imported, np.float32)  # (C, d)
    rows = np.arange(len(imported)) if rows is None else np.asarray(rows)
    own = np.asarray(own, np.float32)  # (S, d)
    agree = 0
    for start in range(0, len(own), CHUNK):
        nearest = (own[start:start + CHUNK] @ imported.T).argmax(axis=1)  # (chunk,)
        agree += sum(names[j] == names[i] for i, j in zip(rows[start:start + CHUNK].tolist(), nearest.tolist()))
    cosines = np.sum(own * imported[rows], axis=1)  # (S,)
    return Agreement(float(cosines.mean()), agree / len(rows), len(rows), len(imported), float(cosines.std()))


def zero_shot_check(image_feats: np.ndarray, labels: np.ndarray, class_feats: np.ndarray) -> ZeroShotCheck:
    """Zero-shot top-1 of `class_feats` (C, d) on image features (n, d) with labels (n,), and the chance level p0 =
    sum_c share_label(c) * share_pred(c) of a prediction independent of the label."""
    from pipeline.features.zeroshot import zero_shot_logits

    labels = np.asarray(labels)
    preds = zero_shot_logits(np.asarray(image_feats, np.float32), np.asarray(class_feats, np.float32)).argmax(1)
    num_classes = len(class_feats)
    label_share = np.bincount(labels, minlength=num_classes) / len(labels)  # (C,)
    pred_share = np.bincount(preds, minlength=num_classes) / len(labels)  # (C,)
    return ZeroShotCheck(float((preds == labels).mean()), float(label_share @ pred_share), len(labels))


def check_space(result: Agreement | ZeroShotCheck, clip: ClipParams, imported: dict) -> str:
    """The verdict recorded in classes.h5 (`passed: ...` or `failed: ...`); refuses (UserError) when the check failed,
    or with clip.space_check: warn, warns on stderr. `imported` is the classes.json record of the features file
    (path, and the model / pretrained attributes it carries)."""
    if result.ok:
        return f"passed: {result}"
    made_by = ", ".join(f"{key}: {imported[key]}" for key in ("model", "pretrained") if key in imported)
    what = "class features" if isinstance(result, Agreement) else "image features"
    message = (f"the {what} of {imported.get('path', 'the imported features file')} "
               f"({made_by or 'no model/pretrained attributes'}) and clip.model: {clip.model}, clip.pretrained: "
               f"{clip.pretrained} are not one embedding space ({result}; {result.requirement}), so class names "
               f"and descriptions encoded with it would not match the images")
    if clip.space_check == "warn":
        print(f"warning: embed_classes: {message}; running anyway (clip.space_check: warn).", file=sys.stderr)
        return f"failed: {result}; {result.requirement} (run anyway under clip.space_check: warn)"
    raise UserError(f"embed_classes: {message}; set clip.model / clip.pretrained to the model that made the file, "
                    f"or clip.space_check: warn to run anyway.")
