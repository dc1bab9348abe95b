"""Stage `train`: class prompts + router on the cached features.

    mdpr train              # reads params.yaml: model, train (runtime for the device)

Writes artifacts/model/model.pt (state dict, params, and the sha256 of the feature files it was trained on) and
per-epoch curves with DVCLive under artifacts/model/live/ (`dvc plots show` draws them). Model selection uses the
`val` split when the dataset has one (fused logits at weight 0.5), never `test`.
"""
from dataclasses import asdict

import numpy as np
import torch

from pipeline import paths
from pipeline.atomic import atomic_path
from pipeline.device import resolve_device
from pipeline.features import build_model, load_features
from pipeline.params import ModelParams, RuntimeParams, TrainParams, load_params
from pipeline.training import fit

SELECTION_FUSION_WEIGHT = 0.5
LIVE_DIR = paths.MODEL_DIR / "live"


def run(params_path: str = "params.yaml") -> None:
    model_params = load_params(params_path, ModelParams)
    train_params = load_params(params_path, TrainParams)
    device = resolve_device(load_params(params_path, RuntimeParams).device)
    feats = load_features()
    model = build_model(feats, model_params, seed=train_params.seed)
    train = feats.splits["train"]
    train_inputs = train["features"]  # (N, d), or (N, 1 + A, d) with cached augmented views (one drawn per epoch)
    if "views" in train:
        train_inputs = np.concatenate([train["features"][:, None], train["views"]], axis=1)
    val = (feats.splits["val"]["features"], feats.splits["val"]["labels"]) if "val" in feats.splits else None
    with _live() as live:
        def log_epoch(record: dict) -> None:
            for name, value in record.items():
                if name != "epoch":
                    live.log_metric(name, value)
            live.next_step()

        state, history = fit(model, torch.from_numpy(train_inputs), torch.from_numpy(train["labels"]),
                             feats.classes["train_counts"], train_params, val=val,
                             fusion_weight=SELECTION_FUSION_WEIGHT, device=str(device), log_epoch=log_epoch)
    checkpoint = {"state_dict": state, "model": asdict(model_params), "train": asdict(train_params),
                  "feature_sha256": feats.hashes, "class_hash": feats.classes["class_hash"],
                  "encoder": {"model": feats.image_attrs["model"], "pretrained": feats.image_attrs["pretrained"]},
                  "dimensions": feats.dimensions, "history": history}
    with atomic_path(paths.CHECKPOINT) as tmp:
        torch.save(checkpoint, tmp)
    last = history[-1]
    chosen = max(history, key=lambda r: r.get("val_mean_class", r["epoch"]))
    print(f"train: {len(history)} epochs on {str(device)}, last loss {last['loss']:.4f}, kept epoch {chosen['epoch']}"
          + (f" (val mean-class {chosen['val_mean_class']:.3f})" if val is not None else "") + f" -> {paths.CHECKPOINT}")


def _live():
    """A DVCLive logger writing only plain files (no dvc.yaml edits, no experiment saving)."""
    import shutil

    from dvclive import Live

    if LIVE_DIR.exists():
        shutil.rmtree(LIVE_DIR)
    return Live(str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False, report=None)
