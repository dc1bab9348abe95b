"""Train class prompts and the router on cached features (params: model, train).

    mdpr train              # DVC stage `train` (runtime: device)

Writes artifacts/model/model.pt (state dict, params, and the sha256 of the feature files it was trained on) and
per-epoch curves with DVCLive under artifacts/model/live/ (`dvc plots show` draws them). Model selection uses the
`val` split when the dataset has one (fused logits at weight 0.5), never `test`.
"""
import shutil

import torch

from pipeline.config.data_params import RuntimeParams
from pipeline.config.model_params import ModelParams, TrainParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.device import resolve_device
from pipeline.features.caches import load_features
from pipeline.model.checkpoint import build_model, save_checkpoint
from pipeline.model.training import fit

SELECTION_FUSION_WEIGHT = 0.5


def run(params_path: str = "params.yaml") -> None:
    model_params, train_params, runtime = load_sections(params_path, ModelParams, TrainParams, RuntimeParams)
    device = resolve_device(runtime.device)
    feats = load_features()
    model = build_model(feats, model_params, seed=train_params.seed)
    train = feats.splits["train"]
    val = feats.scored("val")
    with _live() as live:
        def log_epoch(record: dict) -> None:
            for name, value in record.items():
                if name != "epoch":
                    live.log_metric(name, value)
            live.next_step()

        state, history = fit(model, torch.from_numpy(feats.train_inputs()), torch.from_numpy(train["labels"]),
                             feats.classes["train_counts"], train_params, val=val,
                             fusion_weight=SELECTION_FUSION_WEIGHT, device=str(device), log_epoch=log_epoch)
    save_checkpoint(paths.CHECKPOINT, state, feats, model_params, train_params, history)
    last = history[-1]
    chosen = max(history, key=lambda r: r.get("val_mean_class", r["epoch"]))
    kept = f" (val mean-class {chosen['val_mean_class']:.3f})" if val is not None else ""
    print(f"train: {len(history)} epochs on {device}, last loss {last['loss']:.4f}, kept epoch {chosen['epoch']}"
          f"{kept} -> {paths.CHECKPOINT}")


def _live():
    """A DVCLive logger writing only plain files (no dvc.yaml edits, no experiment saving)."""
    from dvclive import Live

    if paths.LIVE_DIR.exists():
        shutil.rmtree(paths.LIVE_DIR)
    return Live(str(paths.LIVE_DIR), dvcyaml=False, save_dvc_exp=False, report=None)
