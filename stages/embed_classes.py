"""Encode the class-name prompts into classes.h5 (params: clip).

    mdpr embed-classes      # DVC stage `embed_classes` (runtime: device and batch size)

Writes artifacts/features/classes.h5: `features` (C, d) = mean over clip.templates of each class name's
L2-normalised text embedding, re-normalised (or the class features brought with imported image features); `names`
(C,); attributes naming the encoder, the class list and `space_check`, the verdict of the check that an import's
features share this encoder's space (pipeline/features/space.py: with class features, a sample of classes is encoded
and compared first; without, zero-shot on imported image features must beat chance).
"""
import numpy as np

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data import manifest
from pipeline.features import store
from pipeline.features.clip import load_encoder
from pipeline.features.space import check_space, sample_classes, space_agreement, zero_shot_check
from pipeline.features.space_verdict import NOT_CHECKED


def run(params_path: str = "params.yaml") -> None:
    clip_params, runtime = load_sections(params_path, ClipParams, RuntimeParams)
    classes = manifest.read_classes(paths.CLASSES)
    names = classes["names"]
    encoder = load_encoder(clip_params, runtime.device)

    def encode(rows) -> np.ndarray:  # (len(rows), d)
        return encoder.encode_class_names([names[i] for i in rows], clip_params.templates, runtime.batch_size,
                                          progress=True)

    imported_record, verdict, note = classes.get("features_file", {}), NOT_CHECKED, ""
    if paths.IMPORTED_CLASS_FEATURES.is_file():  # brought with imported image features (dataset.name: features)
        feats = np.load(paths.IMPORTED_CLASS_FEATURES)  # (C, d)
        if feats.shape[1] != encoder.dim:
            raise UserError(f"{paths.IMPORTED_CLASS_FEATURES} holds {feats.shape[1]}-d class features but "
                            f"clip.model {clip_params.model} is {encoder.dim}-d; set clip.model to the model "
                            f"that made the features file.")
        agreement = _sampled_agreement(encode, feats, names)
        verdict = check_space(agreement, clip_params, imported_record)
        note = f" (imported; {agreement} with {clip_params.model})"
    else:
        feats = encode(range(len(names)))  # (C, d)
        if paths.SPACE_SAMPLE.is_file():  # imported image features without class features
            with np.load(paths.SPACE_SAMPLE) as sample:
                result = zero_shot_check(sample["features"], sample["labels"], feats)
            verdict = check_space(result, clip_params, imported_record)
            note = f" ({result})"
    attrs = {**encoder.identity, "templates": clip_params.templates, "dataset": classes["dataset"],
             "num_classes": len(names), "class_hash": classes["class_hash"], "space_check": verdict}
    store.write_h5(paths.CLASSES_H5, {"": {"features": feats.astype(np.float32),
                                           "names": np.array(names, dtype=object)}}, attrs)
    print(f"embed_classes: {feats.shape[0]} classes x {feats.shape[1]} dims{note} -> {paths.CLASSES_H5}")


def _sampled_agreement(encode, imported: np.ndarray, names: list[str]):
    """The agreement of a sample of classes when it decides, else of all classes (the rest encoded then)."""
    sample = sample_classes(len(names))
    own = encode(sample)  # (S, d)
    agreement = space_agreement(own, imported, names, sample)
    if agreement.clear():
        return agreement
    rest = np.setdiff1d(np.arange(len(names)), sample)
    every = np.empty_like(imported)  # (C, d)
    every[sample], every[rest] = own, encode(rest)
    return space_agreement(every, imported, names)
