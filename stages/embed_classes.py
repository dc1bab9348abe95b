"""Encode the class-name prompts into classes.h5 (params: clip).

    mdpr embed-classes      # DVC stage `embed_classes` (runtime: device and batch size)

Writes artifacts/features/classes.h5: `features` (C, d) = mean over clip.templates of each class name's
L2-normalised text embedding, re-normalised (or the class features brought with imported image features);
`names` (C,); attributes naming the encoder and the class list.
"""
import numpy as np

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.data import manifest
from pipeline.features import store
from pipeline.features.clip import load_encoder


def run(params_path: str = "params.yaml") -> None:
    clip_params, runtime = load_sections(params_path, ClipParams, RuntimeParams)
    classes = manifest.read_classes(paths.CLASSES)
    encoder = load_encoder(clip_params, runtime.device)
    if paths.IMPORTED_CLASS_FEATURES.is_file():  # brought with imported image features (dataset.name: features)
        feats = np.load(paths.IMPORTED_CLASS_FEATURES)  # (C, d)
    else:
        feats = encoder.encode_class_names(classes["names"], clip_params.templates, runtime.batch_size,
                                            progress=True)  # (C, d)
    attrs = {**encoder.identity, "templates": clip_params.templates, "dataset": classes["dataset"],
             "num_classes": len(classes["names"]), "class_hash": classes["class_hash"]}
    store.write_h5(paths.CLASSES_H5, {"": {"features": feats.astype(np.float32),
                                           "names": np.array(classes["names"], dtype=object)}}, attrs)
    print(f"embed_classes: {feats.shape[0]} classes x {feats.shape[1]} dims -> {paths.CLASSES_H5}")
