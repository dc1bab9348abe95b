"""Resumable, streaming image embedding into images.h5.

    jobs = {split: EmbedJob(ids, reader, encoder, transform, scratch / split, batch_size) for split, ids in ...}
    for job in jobs.values(): job.run()       # encodes what is not done yet, batch by batch
    skipped = assemble(jobs, labels, out_path, attrs, "float32")   # streams chunks into the final HDF5

Each split is its own job (its views differ: extra crops for test, augmentations for train). Progress lives
outside the DVC output: every encoded batch is saved as `<start>.npy` (features) plus a
`<start>.json` marker (written last, atomically) in the scratch folder. A crash loses at most the batch in flight; the
rerun starts after the last contiguous batch and the final file has the same bytes as an uninterrupted run. Under
torchrun each rank owns a contiguous shard of the manifest and writes its own chunks; rank 0 assembles.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from pipeline.atomic import atomic_path, write_json
from pipeline.errors import UserError
from pipeline.store import SCHEMA_VERSION

SPLITS = ("train", "val", "test")


class ImageRows(Dataset):
    """View stacks (1 + A, 3, S, S) for rows [start, stop); an unreadable file yields None and its error text."""

    def __init__(self, ids: list[str], reader, transform, start: int, stop: int, seed: int = 0):
        self.ids, self.reader, self.transform = ids, reader, transform
        self.start, self.stop, self.seed = start, stop, seed

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, offset: int):
        row = self.start + offset
        image_id = self.ids[row]
        try:
            image = self.reader(image_id)
            image.load()
            return self.transform(image, seed=(self.seed, row)), ""
        except Exception as err:  # noqa: BLE001 - any decoder failure is reported by name, never swallowed
            return None, f"{image_id}: {type(err).__name__}: {str(err)[:160]}"


def collate_views(batch):
    """Stack the readable images into (B', 1 + A, 3, S, S); the errors list keeps one entry per row ('')."""
    errors = [err for _img, err in batch]
    good = [img for img, _err in batch if img is not None]
    return (torch.stack(good) if good else None), errors


@dataclass
class EmbedJob:
    """Encode `ids` (one split) with `encoder` into scratch chunks; the shard [start, stop) is this process's."""

    ids: list[str]
    reader: object
    encoder: object
    transform: object
    scratch: Path
    batch_size: int
    num_workers: int = 0
    on_error: str = "fail"
    start: int = 0
    stop: int | None = None
    progress: bool = True
    seed: int = 0
    label: str = "embed images"

    def done_until(self) -> int:
        """First row of this shard not yet encoded (chunks are contiguous from `start`)."""
        position = self.start
        while (self.scratch / f"{position:010d}.json").is_file():
            position += json.loads((self.scratch / f"{position:010d}.json").read_text())["count"]
        return position

    def run(self) -> None:
        stop = len(self.ids) if self.stop is None else self.stop
        self.scratch.mkdir(parents=True, exist_ok=True)
        first = self.done_until()
        if first >= stop:
            return
        dataset = ImageRows(self.ids, self.reader, self.transform, first, stop, self.seed)
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate_views,
                            pin_memory=self.encoder.device.type == "cuda", persistent_workers=False)
        position = first
        with tqdm(total=stop - self.start, initial=first - self.start, unit="img", desc=self.label,
                  disable=not self.progress, mininterval=1.0) as bar:
            for images, errors in loader:
                self._save_chunk(position, images, errors)
                position += len(errors)
                bar.update(len(errors))

    def _save_chunk(self, position: int, images, errors: list[str]) -> None:
        failed = {i: e for i, e in enumerate(errors) if e}
        if failed and self.on_error == "fail":
            first = next(iter(failed.values()))
            raise UserError(f"image {first.split(': ', 1)[0]} under the dataset root cannot be read "
                            f"({first.split(': ', 1)[1]}); replace or remove it, or set embed.on_error: skip.")
        views = 1 + self.transform.num_extra
        feats = np.full((len(errors), views, self.encoder.dim), np.nan, np.float32)  # (B, 1 + A, d); NaN = skipped
        if images is not None:
            flat = self.encoder.encode_image_batch(images.flatten(0, 1))  # (B' * (1 + A), d)
            feats[[i for i, e in enumerate(errors) if not e]] = flat.reshape(len(images), views, -1)
        with atomic_path(self.scratch / f"{position:010d}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, feats)
        write_json(self.scratch / f"{position:010d}.json", {"count": len(errors), "errors": {str(position + i): e
                   for i, e in failed.items()}})

    def chunks(self):
        """(start, features, errors) of every saved chunk, in manifest order."""
        position = 0
        while position < len(self.ids):
            marker = self.scratch / f"{position:010d}.json"
            if not marker.is_file():
                raise UserError(f"embedding scratch {self.scratch} lacks the chunk at row {position}; rerun "
                                "`mdpr embed-images` to finish it.")
            meta = json.loads(marker.read_text())
            yield position, np.load(self.scratch / f"{position:010d}.npy"), meta["errors"]
            position += meta["count"]


def assemble(jobs: dict[str, EmbedJob], labels: dict[str, list[int]], out_path: Path, attrs: dict,
             store_dtype: str) -> list[str]:
    """Stream every split's chunks into the final HDF5 (features, labels, ids, and views when cached).

    Returns the skipped (unreadable) images. Memory holds one chunk at a time, whatever the dataset size.
    """
    skipped = []
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as handle:
            for key, value in sorted({"schema_version": SCHEMA_VERSION, **attrs}.items()):
                handle.attrs[key] = value
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
