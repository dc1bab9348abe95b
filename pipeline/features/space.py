"""One embedding space: imported class features checked against the encoder that will encode the descriptions.

    agreement = space_agreement(own, imported, names)       # own, imported: (C, d) L2-normalised class-name features
    check_space(agreement, clip_params, classes.get("features_file", {}))   # UserError, or a warning with `warn`

A features import brings image features and, optionally, class-name text features made by some CLIP. The library
descriptions are then encoded by `clip.model` / `clip.pretrained`: if that is another model, another tag or a random
init, descriptions and images live in different spaces and the semantic branch scores noise. `embed_classes`
encodes the class names with its own encoder and compares them with the imported ones: the mean cosine of each
class's two embeddings (same model: about 0.9 to 1 even with other prompt templates; unrelated spaces: about 0) and
the top-1 agreement (the share of classes whose own embedding is nearest to their own imported embedding; chance
is 1/C). Below MIN_MEAN_COSINE or MIN_TOP1_AGREEMENT the stage refuses, naming both models, unless
`clip.space_check: warn`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from pipeline.config.data_params import ClipParams
from pipeline.core.errors import UserError

MIN_MEAN_COSINE = 0.5
"""Least mean cosine between the encoder's class-name embeddings and the imported ones."""
MIN_TOP1_AGREEMENT = 0.5
"""Least share of classes whose own embedding is nearest to their imported one."""
CHUNK = 1024
"""Classes compared at once (memory holds CHUNK x C cosines)."""


@dataclass(frozen=True)
class Agreement:
    """How far two sets of class-name embeddings share one space."""

    mean_cosine: float
    top1: float

    @property
    def ok(self) -> bool:
        return self.mean_cosine >= MIN_MEAN_COSINE and self.top1 >= MIN_TOP1_AGREEMENT

    def __str__(self) -> str:
        return f"mean cosine {self.mean_cosine:.2f}, top-1 agreement {self.top1:.0%}"


def space_agreement(own: np.ndarray, imported: np.ndarray, names: list[str]) -> Agreement:
    """Mean cosine of matching rows, and the share of classes whose nearest imported row has their name (repeated
    names, such as ImageNet's two 'missile', count as agreeing with either)."""
    own, imported = np.asarray(own, np.float32), np.asarray(imported, np.float32)  # (C, d) each
    agree = 0
    for start in range(0, len(own), CHUNK):
        nearest = (own[start:start + CHUNK] @ imported.T).argmax(axis=1)  # (chunk,)
        agree += sum(names[j] == names[start + k] for k, j in enumerate(nearest.tolist()))
    return Agreement(float(np.mean(np.sum(own * imported, axis=1))), agree / len(names))


def check_space(agreement: Agreement, clip: ClipParams, imported: dict) -> None:
    """Refuse (or, with clip.space_check: warn, warn on stderr) when the spaces disagree; `imported` is the
    classes.json record of the features file (path, and the model / pretrained attributes it carries)."""
    if agreement.ok:
        return
    made_by = ", ".join(f"{key}: {imported[key]}" for key in ("model", "pretrained") if key in imported)
    message = (f"the class features of {imported.get('path', 'the imported features file')} "
               f"({made_by or 'no model/pretrained attributes'}) and clip.model: {clip.model}, clip.pretrained: "
               f"{clip.pretrained} are not one embedding space ({agreement}; needs >= {MIN_MEAN_COSINE} and >= "
               f"{MIN_TOP1_AGREEMENT:.0%}), so descriptions encoded with it would not match the images")
    if clip.space_check == "warn":
        print(f"warning: embed_classes: {message}; running anyway (clip.space_check: warn).", file=sys.stderr)
        return
    raise UserError(f"embed_classes: {message}; set clip.model / clip.pretrained to the model that made the file, "
                    f"or clip.space_check: warn to run anyway.")
