"""The trained head on disk: built on the cached features, saved with what it was trained on, loaded back safely.

    model = build_model(feats, model_params, seed=0)                  # feats: pipeline.features.caches.Features
    model = build_model(feats, model_params, seed=0, text=load_text_encoder(clip_params))   # model.base: coop
    save_checkpoint(paths.CHECKPOINT, model_state, feats, model_params, train_params, history, kept, evaluate_params)
    model = load_trained_model(feats, load_checkpoint(paths.CHECKPOINT, feats.hashes), clip_params)
    fusion_weight, posthoc_tau = kept_fusion(checkpoint, evaluate_params)

A checkpoint records the sha256 of the three feature files it was trained on; loading it against other features is
refused, so evaluate and predict never score a model on caches it has not seen. It also records what training kept
(the epoch, and the fusion weight and post-hoc tau chosen on val with it) under the `evaluate` params it was trained
with: evaluate and predict use those values, and refuse when the params changed since. Loading uses torch's safe
loader (`weights_only=True`). A `coop` checkpoint holds the context vectors and the head, never the text encoder:
loading rebuilds the encoder from the clip params, refused when they name another CLIP than the one it was trained
with.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from pipeline.config.data_params import ClipParams
from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
from pipeline.config.schema import from_dict
from pipeline.core import paths
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import UserError
from pipeline.features.caches import Features
from pipeline.model.coop import CoOpPrompts, FrozenTextEncoder, check_encoder, load_text_encoder
from pipeline.model.mdpr import MDPRModel

FEATURE_BUFFERS = ("class_feats", "library_feats", "library_mask", "library_prior")
"""Buffers that hold the cached features themselves: not read back from the checkpoint (load_checkpoint has checked
that the feature files are the ones it was trained on, so they are equal), which keeps their copy in the file
(mmapped, ~100 MB at C = 8,142) out of memory."""


def build_model(feats: Features, model_params: ModelParams, seed: int | None = None,
                text: FrozenTextEncoder | None = None) -> MDPRModel:
    """An MDPRModel on the cached class and library features; `coop` also needs the frozen text encoder `text`,
    which must be the CLIP the features were made with."""
    prompts = None
    if model_params.base == "coop":
        if text is None:
            raise UserError("model.base = coop needs the CLIP text encoder; load it with load_text_encoder(clip).")
        check_encoder(text.identity, feats.image_attrs, str(paths.IMAGES_H5))
        prompts = CoOpPrompts(text, list(feats.classes["names"]), model_params, seed)
    return MDPRModel(torch.from_numpy(feats.class_feats), torch.from_numpy(feats.library_feats),
                     torch.from_numpy(feats.library_mask), model_params,
                     library_prior=torch.from_numpy(feats.library_prior), seed=seed,
                     router_init=model_params.router_init, prompts=prompts,
                     library_norms=None if feats.library_norms is None else torch.from_numpy(feats.library_norms))


def save_checkpoint(path: Path, state: dict, feats: Features, model_params: ModelParams, train_params: TrainParams,
                    history: list[dict], kept: dict, evaluate_params: EvaluateParams) -> None:
    """The kept state dict with its params, feature hashes, encoder, training history and what was kept (epoch, fusion
    values chosen on val) under `evaluate_params`, written atomically."""
    checkpoint = {"state_dict": state, "model": asdict(model_params), "train": asdict(train_params),
                  "evaluate": asdict(evaluate_params), "kept": kept,
                  "feature_sha256": feats.hashes, "class_hash": feats.classes["class_hash"],
                  "encoder": {"model": feats.image_attrs["model"], "pretrained": feats.image_attrs["pretrained"]},
                  "dimensions": feats.dimensions, "history": history}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path, feature_hashes: dict) -> dict:
    """The training checkpoint (safe loader), refused when it was trained on other feature files."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # read as used
    except FileNotFoundError:
        raise UserError(f"{paths.located(path)} not found; run `mdpr train` (or `dvc repro train`) first.") from None
    except Exception as err:  # noqa: BLE001 - a damaged or foreign file, reported as such
        raise UserError(f"{path} is not a readable MDPR checkpoint ({str(err)[:100]}); rerun `mdpr train`.") from None
    trained_on = checkpoint.get("feature_sha256", {})
    changed = sorted(name for name, digest in feature_hashes.items() if trained_on.get(name) != digest)
    if changed:
        raise UserError(f"{path} was trained on other features ({', '.join(changed)} changed since); rerun "
                        "`mdpr train` (or `dvc repro`).")
    return checkpoint


def load_trained_model(feats: Features, checkpoint: dict, clip: ClipParams | None = None,
                       device="cpu") -> MDPRModel:
    """The checkpoint's model rebuilt on the cached features, weights loaded, in eval mode; a `coop` model's text
    encoder is rebuilt from `clip` (on `device`) and must be the CLIP the checkpoint was trained with."""
    model_params = from_dict(ModelParams, checkpoint["model"])
    text = None
    if model_params.base == "coop":
        if clip is None:
            raise UserError("the trained model has a coop base branch: loading it needs the clip params.")
        text = load_text_encoder(clip, device)
        check_encoder(text.identity, checkpoint.get("encoder", {}), str(paths.CHECKPOINT))
    model = build_model(feats, model_params, text=text)
    state = {name: value for name, value in checkpoint["state_dict"].items() if name not in FEATURE_BUFFERS}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - set(FEATURE_BUFFERS) or unexpected:
        raise UserError(f"{paths.CHECKPOINT} does not fit this model (missing {sorted(missing)[:3]}, unexpected "
                        f"{unexpected[:3]}); rerun `mdpr train`.")
    return model.eval()


def kept_fusion(checkpoint: dict, evaluate_params: EvaluateParams) -> tuple[float, float]:
    """(fusion weight, post-hoc tau) training kept with its epoch; refused when the evaluate params changed since."""
    trained_with = checkpoint.get("evaluate")
    if trained_with != asdict(evaluate_params):
        raise UserError(f"the trained model kept its epoch for evaluate params {trained_with}, but the params now give "
                        f"{asdict(evaluate_params)}; rerun `mdpr train` (or `dvc repro`).")
    return checkpoint["kept"]["fusion_weight"], checkpoint["kept"]["posthoc_tau"]
