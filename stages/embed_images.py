"""Encode every image with CLIP into images.h5 (params: dataset, clip, embed).

    mdpr embed-images                                         # DVC stage `embed_images` (runtime: device, workers)
    torchrun --nproc_per_node 4 -m stages.cli embed-images    # one shard per process; rank 0 writes images.h5

Resumable: progress is kept under .cache/embed/<fingerprint>/ (outside the DVC output); rerun after a crash and it
continues from the last finished batch. With `runtime.launcher: torchrun`, `mdpr embed-images` starts torchrun
itself. A features import (`dataset.name: features`) stores the user's file as images.h5, split as the manifest
says, without building or loading any encoder (its identity comes from open_clip's configs).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams, RuntimeParams
from pipeline.config.params import load_sections
from pipeline.core import distributed, paths
from pipeline.core.atomic import write_json
from pipeline.data import manifest
from pipeline.data.imported import read_features_file
from pipeline.features import assemble, embed
from pipeline.features.clip import encoder_identity, load_encoder


def run(params_path: str = "params.yaml") -> None:
    dataset, clip_params, embed_params, runtime = load_sections(params_path, DatasetParams, ClipParams, EmbedParams,
                                                                RuntimeParams)
    if runtime.launcher == "torchrun" and not distributed.launched_by_torchrun():
        distributed.relaunch_under_torchrun(["embed-images", "--params", params_path], runtime.nproc_per_node)
        return
    rank, world = distributed.init_distributed()
    classes = manifest.read_classes(paths.CLASSES)
    rows = manifest.read_manifest(paths.MANIFEST, classes)
    identity, dim = encoder_identity(clip_params)
    attrs = {**identity, "dataset": dataset.name, "num_classes": len(classes["names"]),
             "class_hash": classes["class_hash"], "store_dtype": embed_params.store_dtype,
             "test_views": embed_params.test_views, "train_views": embed_params.train_views}
    if dataset.name == "features":
        if rank == 0:
            imported = read_features_file(Path(dataset.features_file))
            count = assemble.store_imported(imported, rows, clip_params, dim, dataset.features_file, attrs,
                                            embed_params.store_dtype)
            write_json(paths.SKIPPED, {"skipped": []})
            print(f"embed_images: imported {count} features from {dataset.features_file} -> {paths.IMAGES_H5}")
        return
    encoder = load_encoder(clip_params, distributed.rank_device(runtime.device, world))
    scratch = paths.SCRATCH / "embed" / embed.fingerprint(encoder.identity, dataset, embed_params,
                                                           paths.MANIFEST.read_bytes())
    jobs, labels = embed.plan_jobs(rows, dataset, embed_params, runtime, encoder, scratch, rank, world)
    for job in jobs.values():
        job.run()
    distributed.barrier(world)
    if rank == 0:
        skipped = assemble.assemble(jobs, labels, paths.IMAGES_H5, attrs, embed_params.store_dtype)
        write_json(paths.SKIPPED, {"skipped": skipped})
        assemble.remove_scratch(scratch)
        note = f", {len(skipped)} unreadable image(s) skipped (listed in {paths.SKIPPED})" if skipped else ""
        print(f"embed_images: {len(rows) - len(skipped)} images x {encoder.dim} dims -> {paths.IMAGES_H5}{note}")
    distributed.finish(world)
