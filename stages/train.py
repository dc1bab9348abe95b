"""Train class prompts and the router on cached features (params: model, train, evaluate, clip).

    mdpr train              # DVC stage `train` (runtime: device)

Writes artifacts/model/model.pt (state dict, params, the sha256 of the feature files it was trained on, and what was
kept) and per-epoch curves with DVCLive under artifacts/model/live/ (names: pipeline/model/live_metrics.py; `dvc
plots show` draws them), whose metrics.json holds the kept epoch's numbers. With a `val` split the epoch is selected
on it, with the fused prediction the `evaluate` params name (`auto` fusion weight or post-hoc tau are chosen on val
at every epoch); without one the last epoch is kept and `auto` is refused. Never `test`. With `model.base: coop`
the frozen text encoder of the clip params is loaded too (its prompts run every step); otherwise no encoder is loaded.
"""
import shutil
import sys
import time

import torch

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.atomic import write_json
from pipeline.core.device import resolve_device
from pipeline.features.caches import load_features
from pipeline.features.space_verdict import failed_warning
from pipeline.model.checkpoint import build_model, save_checkpoint
from pipeline.model.coop import load_text_encoder
from pipeline.model.live_metrics import epoch_line, kept_summary, live_metrics
from pipeline.model.selection import describe_kept, require_val
from pipeline.model.training import fit


def run(params_path: str = "params.yaml") -> None:
    model_params, train_params, evaluate_params, clip_params, runtime = load_sections(
        params_path, ModelParams, TrainParams, EvaluateParams, ClipParams, RuntimeParams)
    device = resolve_device(runtime.device)
    feats = load_features()
    val = feats.scored("val")
    require_val(evaluate_params, val is not None, f"dataset {feats.classes['dataset']!r}")
    text = load_text_encoder(clip_params, device) if model_params.base == "coop" else None
    model = build_model(feats, model_params, seed=train_params.seed, text=text)
    train = feats.splits["train"]
    started = time.monotonic()
    with _live() as live:
        def log_epoch(record: dict) -> None:
            live.step = record["epoch"]  # x of every curve: the epoch (0 = the untrained head, scored on val)
            for name, value in live_metrics(record).items():
                live.log_metric(name, value)
            live.next_step()
            print(epoch_line(record, train_params.epochs, time.monotonic() - started), file=sys.stderr, flush=True)

        state, history, kept = fit(model, torch.from_numpy(feats.train_inputs()), torch.from_numpy(train["labels"]),
                                   feats.classes["train_counts"], train_params, val=val, fusion=evaluate_params,
                                   device=str(device), log_epoch=log_epoch)
    write_json(paths.LIVE_DIR / "metrics.json", kept_summary(history, kept))  # the kept epoch, not the last one
    save_checkpoint(paths.CHECKPOINT, state, feats, model_params, train_params, history, kept, evaluate_params)
    score = f", val mean-class {kept['val_mean_class']:.3f}" if val is not None else ""
    print(f"train: {train_params.epochs} epochs on {device}, last loss {history[-1]['loss']:.4f}{score} -> "
          f"{paths.CHECKPOINT}\ntrain: {describe_kept(kept)}")
    warning = failed_warning(feats.space_check, "train")
    if warning:
        print(warning, file=sys.stderr)


def _live():
    """A DVCLive logger writing only plain files (no dvc.yaml edits, no experiment saving)."""
    from dvclive import Live

    if paths.LIVE_DIR.exists():
        shutil.rmtree(paths.LIVE_DIR)
    return Live(str(paths.LIVE_DIR), dvcyaml=False, save_dvc_exp=False, report=None)
