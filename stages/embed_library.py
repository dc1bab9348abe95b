"""Stage `embed_library`: the description library through the CLIP text encoder, into artifacts/features/library.h5.

    mdpr embed-library      # reads params.yaml: clip (runtime for device and batch size)

Writes `features` (C, V, d), `mask` (C, V) (False where a file-imported class has fewer descriptions than V),
`prior` (C, V) = cosine of each description with its class-name embedding, and `dimensions` (V,) slot names.
"""
import numpy as np

from pipeline import library_io, manifest, paths, store
from pipeline.clip import load_encoder
from pipeline.params import ClipParams, RuntimeParams, load_params


def run(params_path: str = "params.yaml") -> None:
    clip_params = load_params(params_path, ClipParams)
    runtime = load_params(params_path, RuntimeParams)
    classes = manifest.read_classes(paths.CLASSES)
    table = library_io.read_library(paths.LIBRARY, classes["names"])
    text, _ = store.read_h5(paths.CLASSES_H5, {"class_hash": classes["class_hash"], "model": clip_params.model})
    encoder = load_encoder(clip_params, runtime.device)
    feats = encoder.encode_texts(table.texts, runtime.batch_size)  # (number of records, d)
    library_feats = np.zeros((*table.mask.shape, encoder.dim), np.float32)  # (C, V, d)
    library_feats[table.mask] = feats
    prior = np.einsum("cvd,cd->cv", library_feats, text[""]["features"]) * table.mask  # (C, V)
    attrs = {**encoder.identity, "dataset": classes["dataset"], "num_classes": len(classes["names"]),
             "class_hash": classes["class_hash"], "library_sha256": table.sha256}
    store.write_h5(paths.LIBRARY_H5, {"": {"features": library_feats, "mask": table.mask,
                                           "prior": prior.astype(np.float32),
                                           "dimensions": np.array(table.dimensions, dtype=object)}}, attrs)
    print(f"embed_library: {table.mask.shape[0]} classes x {table.mask.shape[1]} descriptions "
          f"({int(table.mask.sum())} present) -> {paths.LIBRARY_H5}")
