"""Encode the description library into library.h5 (params: clip).

    mdpr embed-library      # DVC stage `embed_library` (runtime: device and batch size)

Writes artifacts/features/library.h5: `features` (C, V, d) L2-normalised, `norms` (C, V) each description's norm
before normalisation (0 where masked; `model.router_keys: raw` multiplies them back), `mask` (C, V) (False where a
file-imported class has fewer descriptions than V), `prior` (C, V) = cosine of each description with its class-name
embedding, and `dimensions` (V,) slot names; its `space_check` attribute repeats classes.h5's
(pipeline/features/space_verdict.py).
"""
import sys

import numpy as np

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.data import manifest
from pipeline.features import store
from pipeline.features.clip import load_encoder
from pipeline.features.space_verdict import failed_warning
from pipeline.library.io import read_library


def run(params_path: str = "params.yaml") -> None:
    clip_params, runtime = load_sections(params_path, ClipParams, RuntimeParams)
    classes = manifest.read_classes(paths.CLASSES)
    table = read_library(paths.LIBRARY, classes["names"])
    expect = {"class_hash": classes["class_hash"], "model": clip_params.model}
    text, text_attrs = store.read_h5(paths.CLASSES_H5, expect)
    encoder = load_encoder(clip_params, runtime.device)
    feats, norms = encoder.encode_texts(table.texts, runtime.batch_size, progress=True, with_norms=True)  # (R, d), (R,)
    library_feats = np.zeros((*table.mask.shape, encoder.dim), np.float32)  # (C, V, d)
    library_feats[table.mask] = feats
    library_norms = np.zeros(table.mask.shape, np.float32)  # (C, V)
    library_norms[table.mask] = norms
    prior = np.einsum("cvd,cd->cv", library_feats, text[""]["features"]) * table.mask  # (C, V)
    attrs = {**encoder.identity, "dataset": classes["dataset"], "num_classes": len(classes["names"]),
             "class_hash": classes["class_hash"], "library_sha256": table.sha256,
             "space_check": text_attrs.get("space_check", "")}  # the verdict on the classes' space, carried on
    store.write_h5(paths.LIBRARY_H5, {"": {"features": library_feats, "norms": library_norms, "mask": table.mask,
                                           "prior": prior.astype(np.float32),
                                           "dimensions": np.array(table.dimensions, dtype=object)}}, attrs)
    print(f"embed_library: {table.mask.shape[0]} classes x {table.mask.shape[1]} descriptions "
          f"({int(table.mask.sum())} present) -> {paths.LIBRARY_H5}")
    warning = failed_warning(text_attrs.get("space_check"), "embed_library")
    if warning:
        print(warning, file=sys.stderr)
