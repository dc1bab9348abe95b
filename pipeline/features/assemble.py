"""The final images.h5: every split's scratch chunks streamed into one HDF5 file, or a user's features stored as one.

    skipped = assemble(jobs, labels, paths.IMAGES_H5, attrs, "float32")     # jobs: pipeline/features/embed.py
    remove_scratch(scratch)                                                  # after a successful assemble
    count = store_imported(imported, rows, clip_params, 512, "feats.h5", attrs, "float32")   # dataset.name: features

Layout: per split `features` (N, d), `labels` (N,), `ids` (N,), and `views` (N, A, d) when extra views are cached;
root attributes name the encoder, the dataset and the class list. Memory holds one chunk at a time.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np

from pipeline.config.data_params import ClipParams
from pipeline.core import paths
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import UserError
from pipeline.data.imported import ImportedFeatures
from pipeline.data.manifest import SPLITS
from pipeline.features import store
from pipeline.features.embed import EmbedJob


def assemble(jobs: dict[str, EmbedJob], labels: dict[str, list[int]], out_path: Path, attrs: dict,
             store_dtype: str) -> list[str]:
    """Stream every split's chunks into the final HDF5 (features, labels, ids, and views when cached).

    Returns the skipped (unreadable) images. Memory holds one chunk at a time, whatever the dataset size.
    """
    skipped = []
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as handle:
            store.write_attrs(handle, attrs)
            for split in (s for s in SPLITS if s in jobs):
                skipped += _assemble_split(handle, split, jobs[split], labels[split], store_dtype)
    return skipped


def _assemble_split(handle: h5py.File, split: str, job: EmbedJob, labels: list[int], store_dtype: str) -> list[str]:
    failed = {}
    for _start, _feats, errors in job.chunks():
        failed.update({int(i): e for i, e in errors.items()})
    keep = [i for i in range(len(job.ids)) if i not in failed]
    if not keep:
        return list(failed.values())
    group = handle.create_group(split)
    extra = job.transform.num_extra
    group.create_dataset("features", shape=(len(keep), job.encoder.dim), dtype=store_dtype)
    if extra:
        group.create_dataset("views", shape=(len(keep), extra, job.encoder.dim), dtype=store_dtype)
    group.create_dataset("ids", data=np.array([job.ids[i] for i in keep], dtype=object), dtype=h5py.string_dtype())
    group.create_dataset("labels", data=np.array([labels[i] for i in keep], dtype=np.int64))
    slot = {row: k for k, row in enumerate(keep)}
    for start, feats, _errors in job.chunks():
        for first_row, first_slot, length in _runs([slot.get(start + i) for i in range(len(feats))]):
            group["features"][first_slot:first_slot + length] = feats[first_row:first_row + length, 0]
            if extra:
                group["views"][first_slot:first_slot + length] = feats[first_row:first_row + length, 1:]
    return list(failed.values())


def _runs(slots: list[int | None]) -> list[tuple[int, int, int]]:
    """(first row, first slot, length) of each run of consecutive kept rows (None = skipped row)."""
    runs: list[tuple[int, int, int]] = []
    for row, slot in enumerate(slots):
        if slot is None:
            continue
        if runs and runs[-1][0] + runs[-1][2] == row and runs[-1][1] + runs[-1][2] == slot:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((row, slot, 1))
    return runs


def remove_scratch(scratch: Path) -> None:
    """Delete a finished run's chunks (all splits)."""
    if scratch.is_dir():
        shutil.rmtree(scratch)


def store_imported(imported: ImportedFeatures, rows: list[tuple[str, str, int]], clip: ClipParams, dim: int,
                   source: str, attrs: dict, store_dtype: str) -> int:
    """dataset.name features: the user's validated features as images.h5, split as the manifest says (which may
    have carved val out of train); no image is encoded and no encoder is loaded. Returns the rows stored.

    `attrs` name the encoder (pipeline.features.clip.encoder_identity, whose width is `dim`) and the class list; the
    file's own `model` and `pretrained` attributes, when present, must agree with the clip params (compared as the
    user writes them).
    """
    width = next(iter(imported.splits.values()))["features"].shape[1]
    if width != dim:
        raise UserError(f"{source}: features are {width}-d but clip.model {clip.model} is {dim}-d; set "
                        f"clip.model/clip.pretrained to the model that made the features.")
    for key, wanted in (("model", clip.model), ("pretrained", clip.pretrained)):
        given = imported.attrs.get(key)
        if given is not None and given not in (wanted, attrs[key]) and not given.lower() == wanted.lower() == "none":
            raise UserError(f"{source} was made with {key}: {given} but the clip params say {key}: {wanted}; set "
                            f"clip.{key}: {given} so text and image features share one space.")
    order = [split for split in SPLITS if split in imported.splits]
    everything = np.concatenate([imported.splits[split]["features"] for split in order])  # (N_file, d)
    where = {image_id: k for k, image_id in enumerate(i for split in order for i in imported.splits[split]["ids"])}
    groups = {}
    for split in SPLITS:
        chosen = [(image_id, label) for s, image_id, label in rows if s == split]
        if not chosen:
            continue
        missing = [image_id for image_id, _ in chosen if image_id not in where]
        if missing:
            raise UserError(f"{source} has no image {missing[0]!r} of {paths.MANIFEST}; rerun `mdpr prepare`.")
        groups[split] = {"features": everything[[where[i] for i, _ in chosen]].astype(store_dtype),
                         "labels": np.array([label for _, label in chosen], np.int64),
                         "ids": np.array([i for i, _ in chosen], dtype=object)}
    store.write_h5(paths.IMAGES_H5, groups, attrs)
    return sum(len(group["labels"]) for group in groups.values())
