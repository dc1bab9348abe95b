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

from pipeline import data, embed, paths
from pipeline.atomic import write_json
from pipeline.clip import load_encoder
from pipeline.params import ClipParams, DatasetParams, EmbedParams, RuntimeParams, load_params


def run(params_path: str = "params.yaml") -> None:
    runtime = load_params(params_path, RuntimeParams)
    if runtime.launcher == "torchrun" and "LOCAL_RANK" not in os.environ:
        _relaunch_under_torchrun(params_path, runtime.nproc_per_node)
        return
    dataset = load_params(params_path, DatasetParams)
    clip_params = load_params(params_path, ClipParams)
    embed_params = load_params(params_path, EmbedParams)
    rank, world = _init_distributed()
    rows = data.read_manifest(paths.MANIFEST)
    classes = data.read_classes(paths.CLASSES)
    device = runtime.device
    if world > 1 and device in ("auto", "cuda") and _cuda():
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    encoder = load_encoder(clip_params, device)
    fingerprint = _fingerprint(encoder.identity, dataset, embed_params, paths.MANIFEST.read_bytes())
    ids = [image_id for _split, image_id, _label in rows]
    shard = (len(ids) * rank // world, len(ids) * (rank + 1) // world)
    job = embed.EmbedJob(ids, data.ImageReader(dataset), encoder, paths.SCRATCH / "embed" / fingerprint,
                         runtime.batch_size, runtime.num_workers, embed_params.on_error, *shard,
                         progress=rank == 0)
    job.run()
    if world > 1:
        dist.barrier()
    if rank == 0:
        attrs = {**encoder.identity, "dataset": dataset.name, "num_classes": len(classes["names"]),
                 "class_hash": classes["class_hash"], "store_dtype": embed_params.store_dtype}
        skipped = embed.assemble(job, [r[0] for r in rows], [r[2] for r in rows], paths.IMAGES_H5, attrs,
                                 embed_params.store_dtype)
        write_json(paths.SKIPPED, {"skipped": skipped})
        embed.remove_scratch(job.scratch)
        note = f", {len(skipped)} unreadable image(s) skipped (listed in {paths.SKIPPED})" if skipped else ""
        print(f"embed_images: {len(ids) - len(skipped)} images x {encoder.dim} dims -> {paths.IMAGES_H5}{note}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


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
