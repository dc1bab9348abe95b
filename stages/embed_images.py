"""Stage `embed_images`: every manifest image through the frozen CLIP image encoder, into artifacts/features/images.h5.

    mdpr embed-images                                   # reads params.yaml: dataset, clip, embed (+ runtime)
    torchrun --nproc_per_node 4 -m stages.cli embed-images   # one shard per process; rank 0 writes images.h5

Resumable: progress is kept under .cache/embed/<fingerprint>/ (outside the DVC output); rerun after a crash and it
continues from the last finished batch. With `runtime.launcher: torchrun`, `mdpr embed-images` starts torchrun itself.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict

import torch.distributed as dist

from pathlib import Path

from pipeline import data, embed, manifest, paths, store
from pipeline.atomic import write_json
from pipeline.clip import load_encoder
from pipeline.errors import UserError
from pipeline.imported import read_features_file
from pipeline.params import ClipParams, DatasetParams, EmbedParams, RuntimeParams, load_params
from pipeline.views import ViewTransform


def run(params_path: str = "params.yaml") -> None:
    runtime = load_params(params_path, RuntimeParams)
    if runtime.launcher == "torchrun" and "LOCAL_RANK" not in os.environ:
        _relaunch_under_torchrun(params_path, runtime.nproc_per_node)
        return
    dataset = load_params(params_path, DatasetParams)
    clip_params = load_params(params_path, ClipParams)
    embed_params = load_params(params_path, EmbedParams)
    rank, world = _init_distributed()
    rows = manifest.read_manifest(paths.MANIFEST)
    classes = manifest.read_classes(paths.CLASSES)
    device = runtime.device
    if world > 1 and device in ("auto", "cuda") and _cuda():
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    encoder = load_encoder(clip_params, device)
    attrs = {**encoder.identity, "dataset": dataset.name, "num_classes": len(classes["names"]),
             "class_hash": classes["class_hash"], "store_dtype": embed_params.store_dtype,
             "test_views": embed_params.test_views, "train_views": embed_params.train_views}
    if dataset.name == "features":
        if rank == 0:
            _import_features(dataset, encoder, attrs, embed_params.store_dtype)
        return
    scratch = paths.SCRATCH / "embed" / _fingerprint(encoder.identity, dataset, embed_params,
                                                      paths.MANIFEST.read_bytes())
    jobs, labels = {}, {}
    image_size = json.loads(encoder.identity["image_size"])[0]
    for split in embed.SPLITS:
        split_rows = [r for r in rows if r[0] == split]
        if not split_rows:
            continue
        extra = _extra_views(split, embed_params)
        ids = [image_id for _split, image_id, _label in split_rows]
        shard = (len(ids) * rank // world, len(ids) * (rank + 1) // world)
        jobs[split] = embed.EmbedJob(ids, data.ImageReader(dataset), encoder,
                                     ViewTransform(encoder.preprocess, image_size, extra), scratch / split,
                                     runtime.batch_size, runtime.num_workers, embed_params.on_error, *shard,
                                     progress=rank == 0, seed=dataset.seed, label=f"embed {split}")
        labels[split] = [label for _split, _id, label in split_rows]
        jobs[split].run()
    if world > 1:
        dist.barrier()
    if rank == 0:
        skipped = embed.assemble(jobs, labels, paths.IMAGES_H5, attrs, embed_params.store_dtype)
        write_json(paths.SKIPPED, {"skipped": skipped})
        embed.remove_scratch(scratch)
        note = f", {len(skipped)} unreadable image(s) skipped (listed in {paths.SKIPPED})" if skipped else ""
        print(f"embed_images: {len(rows) - len(skipped)} images x {encoder.dim} dims -> {paths.IMAGES_H5}{note}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def _extra_views(split: str, embed_params: EmbedParams) -> str:
    """Which extra views a split caches: augmentations for train, five crops for test."""
    if split == "train" and embed_params.train_views:
        return f"augment:{embed_params.train_views}"
    if split == "test" and embed_params.test_views != "none":
        return embed_params.test_views
    return "none"


def _import_features(dataset: DatasetParams, encoder, attrs: dict, store_dtype: str) -> None:
    """dataset.name features: validate the user's file and store it as images.h5 (no image is encoded)."""
    imported = read_features_file(Path(dataset.features_file))
    width = next(iter(imported.splits.values()))["features"].shape[1]
    if width != encoder.dim:
        raise UserError(f"{dataset.features_file}: features are {width}-d but clip.model {attrs['model']} is "
                        f"{encoder.dim}-d; set clip.model/clip.pretrained to the model that made the features.")
    for key in ("model", "pretrained"):
        if key in imported.attrs and imported.attrs[key] != attrs[key]:
            raise UserError(f"{dataset.features_file} was made with {key}={imported.attrs[key]!r} but clip.{key} is "
                            f"{attrs[key]!r}; make them agree so text and image features share one space.")
    groups = {split: {**values, "features": values["features"].astype(store_dtype)}
              for split, values in imported.splits.items()}
    store.write_h5(paths.IMAGES_H5, groups, attrs)
    write_json(paths.SKIPPED, {"skipped": []})
    print(f"embed_images: imported {sum(len(g['labels']) for g in groups.values())} features from "
          f"{dataset.features_file} -> {paths.IMAGES_H5}")


def _fingerprint(identity: dict, dataset: DatasetParams, embed_params: EmbedParams, manifest: bytes) -> str:
    """Names the scratch folder: a resume only continues work made for exactly these inputs."""
    key = json.dumps({"encoder": identity, "dataset": asdict(dataset), "embed": asdict(embed_params),
                      "manifest": hashlib.sha256(manifest).hexdigest()}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _init_distributed() -> tuple[int, int]:
    """(rank, world size); starts a process group when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if _cuda() else "gloo")
    return dist.get_rank(), world


def _relaunch_under_torchrun(params_path: str, nproc: int) -> None:
    """Run this stage as `torchrun --nproc_per_node N -m stages.cli embed-images` (runtime.launcher: torchrun)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "stages.cli", "embed-images", "--params", params_path]
    code = subprocess.call(command)
    if code:
        raise SystemExit(code)
