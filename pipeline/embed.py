"""Resumable, streaming image embedding into images.h5.

    job = EmbedJob(rows, reader, encoder, scratch=Path(".cache/embed/<fingerprint>"), ...)
    job.run()                       # encodes what is not done yet, batch by batch
    skipped = job.assemble(out_path, attrs)   # streams the chunks into the final HDF5, atomically

Progress lives outside the DVC output: every encoded batch is saved as `<start>.npy` (features) plus a
`<start>.json` marker (written last, atomically) in the scratch folder. A crash loses at most the batch in flight; the
rerun starts after the last contiguous batch and the final file has the same bytes as an uninterrupted run. Under
torchrun each rank owns a contiguous shard of the manifest and writes its own chunks; rank 0 assembles.
"""
from __future__ import annotations

import json
import os
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
    """Preprocessed images for manifest rows [start, stop); an unreadable file yields zeros and its error text."""

    def __init__(self, ids: list[str], reader, transform, start: int, stop: int):
        self.ids, self.reader, self.transform, self.start, self.stop = ids, reader, transform, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, offset: int):
        image_id = self.ids[self.start + offset]
        try:
            image = self.reader(image_id)
            image.load()
            return self.transform(image), ""
        except Exception as err:  # noqa: BLE001 - any decoder failure is reported by name, never swallowed
            return None, f"{image_id}: {type(err).__name__}: {str(err)[:160]}"


def _collate(batch):
    """Stack the readable images; the errors list keeps one entry per row ('' when fine)."""
    errors = [err for _img, err in batch]
    good = [img for img, _err in batch if img is not None]
    return (torch.stack(good) if good else None), errors


@dataclass
class EmbedJob:
    """Encode `ids` with `encoder` into scratch chunks; the shard [start, stop) belongs to this process."""

    ids: list[str]
    reader: object
    encoder: object
    scratch: Path
    batch_size: int
    num_workers: int = 0
    on_error: str = "fail"
    start: int = 0
    stop: int | None = None
    progress: bool = True

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
        dataset = ImageRows(self.ids, self.reader, self.encoder.preprocess, first, stop)
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_collate,
                            pin_memory=self.encoder.device.type == "cuda", persistent_workers=False)
        position = first
        with tqdm(total=stop - self.start, initial=first - self.start, unit="img", desc="embed images",
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
        feats = np.full((len(errors), self.encoder.dim), np.nan, np.float32)  # (B, d); NaN rows = skipped images
        if images is not None:
            feats[[i for i, e in enumerate(errors) if not e]] = self.encoder.encode_image_batch(images)
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


def assemble(job: EmbedJob, splits: list[str], labels: list[int], out_path: Path, attrs: dict,
             store_dtype: str) -> list[str]:
    """Stream the chunks into the final HDF5 (per split: features, labels, ids); return the skipped images."""
    skipped_rows = set()
    skipped = []
    for _start, _feats, errors in job.chunks():
        skipped_rows.update(int(i) for i in errors)
        skipped += list(errors.values())
    keep = {s: [i for i, split in enumerate(splits) if split == s and i not in skipped_rows] for s in SPLITS}
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as handle:
            for key, value in sorted({"schema_version": SCHEMA_VERSION, **attrs}.items()):
                handle.attrs[key] = value
            slots = {}
            for split in SPLITS:
                if keep[split]:
                    group = handle.create_group(split)
                    group.create_dataset("features", shape=(len(keep[split]), job.encoder.dim), dtype=store_dtype)
                    group.create_dataset("ids", data=np.array([job.ids[i] for i in keep[split]], dtype=object),
                                         dtype=h5py.string_dtype())
                    group.create_dataset("labels", data=np.array([labels[i] for i in keep[split]], dtype=np.int64))
                    slots.update({row: (split, k) for k, row in enumerate(keep[split])})
            for start, feats, _errors in job.chunks():
                _copy_rows(handle, slots, start, feats)
    return skipped


def _copy_rows(handle: h5py.File, slots: dict, start: int, feats: np.ndarray) -> None:
    """Write one chunk's rows to their (split, position) slots, in contiguous runs."""
    runs: list[tuple[str, int, int, int]] = []  # (split, first slot, first row in chunk, length)
    for offset in range(len(feats)):
        slot = slots.get(start + offset)
        if slot is None:
            continue
        if runs and runs[-1][0] == slot[0] and runs[-1][1] + runs[-1][3] == slot[1] and \
                runs[-1][2] + runs[-1][3] == offset:
            runs[-1] = (*runs[-1][:3], runs[-1][3] + 1)
        else:
            runs.append((slot[0], slot[1], offset, 1))
    for split, first_slot, first_row, length in runs:
        handle[split]["features"][first_slot:first_slot + length] = feats[first_row:first_row + length]


def remove_scratch(scratch: Path) -> None:
    """Delete a finished job's chunks."""
    if scratch.is_dir():
        for path in scratch.iterdir():
            path.unlink()
        os.rmdir(scratch)
