"""Resumable, streaming image embedding into images.h5.

    jobs, labels = plan_jobs(rows, dataset, embed_params, runtime, encoder, scratch, rank=0, world=1)
    for job in jobs.values(): job.run()       # encodes what is not done yet, batch by batch
    skipped = assemble(jobs, labels, out_path, attrs, "float32")   # pipeline/features/assemble.py

Each split is its own job (its views differ: extra crops for test, augmentations for train). Progress lives
outside the DVC output: every encoded batch is saved as `<start>.npy` (features) plus a
`<start>.json` marker (written last, atomically) in the scratch folder. A crash loses at most the batch in flight; the
rerun starts after the last contiguous batch and the final file has the same bytes as an uninterrupted run. Under
torchrun each rank owns a contiguous shard of the manifest and writes its own chunks; rank 0 assembles.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from pipeline.config.data_params import DatasetParams, EmbedParams, RuntimeParams
from pipeline.core.atomic import atomic_path, write_json
from pipeline.core.errors import UserError
from pipeline.data.images import ImageReader, open_rgb
from pipeline.data.manifest import SPLITS
from pipeline.features.gpu_decode import JPEG_MAGIC, collate_items, decode_plan, say_fallback
from pipeline.features.views import ViewTransform


class ImageRows(Dataset):
    """View stacks (1 + A, 3, S, S) for rows [start, stop); an unreadable file yields None and its error text."""

    def __init__(self, ids: list[str], reader, transform, start: int, stop: int, seed: int = 0):
        self.ids, self.reader, self.transform = ids, reader, transform
        self.start, self.stop, self.seed = start, stop, seed

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, offset: int):
        row = self.start + offset
        try:
            return self._load(row), ""
        except Exception as err:  # noqa: BLE001 - any decoder failure is reported by name, never swallowed
            return None, f"{self.ids[row]}: {type(err).__name__}: {str(err)[:160]}"

    def _load(self, row: int) -> torch.Tensor:
        image = self.reader(self.ids[row])
        image.load()
        return self.transform(image, seed=(self.seed, row))


class FileBytesRows(ImageRows):
    """`embed.decode: gpu`: a JPEG file's raw bytes (1-D uint8, decoded later on the device); any other file as the
    CPU view stack (1 + A, 3, S, S). Ids are paths relative to `root`."""

    def __init__(self, ids: list[str], root: Path, transform, start: int, stop: int, seed: int = 0):
        super().__init__(ids, None, transform, start, stop, seed)
        self.root = Path(root)

    def _load(self, row: int) -> torch.Tensor:
        path = self.root / self.ids[row]
        data = path.read_bytes()
        if data[:2] == JPEG_MAGIC:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return self.transform(open_rgb(path), seed=(self.seed, row))


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
    decode: object = None  # a gpu_decode.DeviceJpegViews when JPEGs are decoded on the device (embed.decode: gpu)

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
        if self.decode is None:
            dataset, collate = ImageRows(self.ids, self.reader, self.transform, first, stop, self.seed), collate_views
        else:
            dataset = FileBytesRows(self.ids, self.decode.root, self.transform, first, stop, self.seed)
            collate = collate_items
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate,
                            pin_memory=self.encoder.device.type == "cuda", persistent_workers=False)
        position = first
        with tqdm(total=stop - self.start, initial=first - self.start, unit="img", desc=self.label,
                  disable=not self.progress, mininterval=1.0) as bar:
            for images, errors in loader:
                if self.decode is not None:  # (B', 1, 3, S, S) on the device
                    images, errors = self.decode(images, errors, self.ids[position:position + len(errors)])
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


def extra_views(split: str, embed_params: EmbedParams) -> str:
    """Which extra views a split caches: augmentations for train, five crops for test."""
    if split == "train" and embed_params.train_views:
        return f"augment:{embed_params.train_views}"
    if split == "test" and embed_params.test_views != "none":
        return embed_params.test_views
    return "none"


def plan_jobs(rows: list[tuple[str, str, int]], dataset: DatasetParams, embed_params: EmbedParams,
              runtime: RuntimeParams, encoder, scratch: Path, rank: int, world: int):
    """One job per split present in the manifest (this rank's contiguous shard of it), and each split's labels."""
    jobs, labels, fallbacks = {}, {}, []
    image_size = json.loads(encoder.identity["image_size"])[0]
    for split in SPLITS:
        split_rows = [r for r in rows if r[0] == split]
        if not split_rows:
            continue
        ids = [image_id for _split, image_id, _label in split_rows]
        transform = ViewTransform(encoder.preprocess, image_size, extra_views(split, embed_params))
        decode, fallback = decode_plan(embed_params, dataset, encoder.device, transform)
        fallbacks.append(fallback)
        jobs[split] = EmbedJob(ids, ImageReader(dataset), encoder, transform, scratch / split, runtime.batch_size,
                               runtime.num_workers, embed_params.on_error, len(ids) * rank // world,
                               len(ids) * (rank + 1) // world, progress=rank == 0, seed=dataset.seed,
                               label=f"embed {split}", decode=decode)
        labels[split] = [label for _split, _id, label in split_rows]
    if rank == 0:
        say_fallback(next((reason for reason in fallbacks if reason), None))
    return jobs, labels


def fingerprint(identity: dict, dataset: DatasetParams, embed_params: EmbedParams, manifest: bytes) -> str:
    """Names the scratch folder: a resume only continues work made for exactly these inputs."""
    key = json.dumps({"encoder": identity, "dataset": asdict(dataset), "embed": asdict(embed_params),
                      "manifest": hashlib.sha256(manifest).hexdigest()}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]
