"""Encode the class-name prompts into classes.h5 (params: clip).

    mdpr embed-classes      # DVC stage `embed_classes` (runtime: device and batch size)

Writes artifacts/features/classes.h5: `features` (C, d) = mean over clip.templates of each class name's
L2-normalised text embedding, re-normalised (or the class features brought with imported image features, once
checked to share this encoder's space: pipeline/features/space.py); `names` (C,); attributes naming the encoder and
the class list.
"""
import numpy as np

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data import manifest
from pipeline.features import store
from pipeline.features.clip import load_encoder
from pipeline.features.space import check_space, space_agreement


def run(params_path: str = "params.yaml") -> None:
    clip_params, runtime = load_sections(params_path, ClipParams, RuntimeParams)
    classes = manifest.read_classes(paths.CLASSES)
    encoder = load_encoder(clip_params, runtime.device)
    feats = encoder.encode_class_names(classes["names"], clip_params.templates, runtime.batch_size,
                                       progress=True)  # (C, d)
    note = ""
    if paths.IMPORTED_CLASS_FEATURES.is_file():  # brought with imported image features (dataset.name: features)
        imported = np.load(paths.IMPORTED_CLASS_FEATURES)  # (C, d)
        if imported.shape != feats.shape:
            raise UserError(f"{paths.IMPORTED_CLASS_FEATURES} holds {imported.shape[1]}-d class features but "
                            f"clip.model {clip_params.model} is {feats.shape[1]}-d; set clip.model to the model "
                            f"that made the features file.")
        agreement = space_agreement(feats, imported, classes["names"])
        check_space(agreement, clip_params, classes.get("features_file", {}))
        feats, note = imported, f" (imported; {agreement} with {clip_params.model})"
    attrs = {**encoder.identity, "templates": clip_params.templates, "dataset": classes["dataset"],
             "num_classes": len(classes["names"]), "class_hash": classes["class_hash"]}
    store.write_h5(paths.CLASSES_H5, {"": {"features": feats.astype(np.float32),
                                           "names": np.array(classes["names"], dtype=object)}}, attrs)
    print(f"embed_classes: {feats.shape[0]} classes x {feats.shape[1]} dims{note} -> {paths.CLASSES_H5}")
