"""Classify new image files with the trained MDPR model, and say which descriptions it routed to.

    predictor = load_predictor(ClipParams(...), EvaluateParams(...), RuntimeParams(...))   # once
    results, skipped = predict(predictor, collect_images(["photos/"]), skip_unreadable=True)
    results[0].top_k                 # [(class index, class name, probability), ...] best first
    results[0].explanations[k]       # Explanation of the k-th class: routing, description, entropy, flat
    results[0].routing               # {dimension: weight} for the top class (slots of a dimension summed)
    results[0].description           # Description(dimension, text, weight): the top class's most-routed text

An explanation is `flat` when the class's routing weights cannot be told from uniform: normalised entropy
H / log V_c above FLAT_ENTROPY = 0.95 (V_c its valid descriptions). For V = 5, 0.95 is reached when the heaviest
description weighs about 0.37 and the others share the rest evenly: under that, no description stands out enough
for "the model looked at this description" to mean anything, and predict says "flat" instead of naming one.

The probabilities are the softmax of the fused logits `w * base + (1 - w) * semantic - posthoc_tau * log prior`
with the values training kept (evaluate.fusion_weight, evaluate.posthoc_tau, or the values chosen on val for
`auto`), as the evaluate stage scores the test split. Images go through the CLIP encoder named by the `clip` params
section, which must be the encoder the feature caches (and so the model) were made with: its identity is checked
against images.h5 and the checkpoint (precision aside: fp16/bf16 vs fp32 is the same encoder). When the test split
was cached with extra views (`embed.test_views: five_crop`), each image is scored on those same views, logits
averaged, so a test image gets the prediction the evaluate stage counted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data.images import open_rgb
from pipeline.evaluation.routing import per_dimension
from pipeline.features import store
from pipeline.features.caches import load_features
from pipeline.features.clip import Encoder, load_encoder
from pipeline.features.embed import ImageRows, collate_views
from pipeline.features.views import ViewTransform
from pipeline.library.io import read_library
from pipeline.model.checkpoint import kept_fusion, load_checkpoint, load_trained_model
from pipeline.model.inference import scores, view_mean
from pipeline.model.losses import class_log_prior
from pipeline.model.mdpr import HeadSide, MDPRModel, fuse
from pipeline.model.metrics import routing_entropy

IDENTITY_KEYS_IGNORED = ("precision",)  # numeric format, not another encoder


@dataclass
class Description:
    dimension: str
    text: str
    weight: float             # routing weight of this one description


FLAT_ENTROPY = 0.95  # normalised routing entropy above which an explanation is `flat` (module docstring)


@dataclass
class Explanation:
    routing: dict[str, float]             # routing weight per dimension (slots of a dimension summed; sums to 1)
    description: Description              # the description with the highest routing weight
    entropy: float | None                 # H / log V_c of the weights; None for a class with one description

    @property
    def flat(self) -> bool:
        return bool(self.entropy is not None and self.entropy > FLAT_ENTROPY)


@dataclass
class Prediction:
    path: str
    top_k: list[tuple[int, str, float]]   # (class index, class name, probability), best first
    explanations: list[Explanation]       # one per class of top_k, same order

    @property
    def routing(self) -> dict[str, float]:
        return self.explanations[0].routing

    @property
    def description(self) -> Description:
        return self.explanations[0].description

    @property
    def dominant_dimension(self) -> str:
        return max(self.routing, key=self.routing.get)


@dataclass
class Predictor:
    """Everything loaded once: encoder, trained model, class names and the library texts."""

    encoder: Encoder
    model: MDPRModel
    class_names: list[str]
    dimensions: list[str]                 # (V,) dimension of each slot
    texts: list[list[str | None]]         # (C, V) description text (None where the library has no entry)
    log_prior: torch.Tensor               # (C,)
    transform: ViewTransform              # PIL image -> (1 + A, 3, S, S): the views the test split was cached with
    fusion: tuple[float, float]           # (fusion weight, post-hoc tau) training kept under the evaluate params
    runtime: RuntimeParams
    side: HeadSide                        # what the model computes without images, made once (model.class_side())


def load_predictor(clip: ClipParams, evaluate: EvaluateParams, runtime: RuntimeParams) -> Predictor:
    """Encoder + checkpoint + library, checked to belong together (paths relative to the project root)."""
    feats = load_features(with_images=False)
    checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
    encoder = load_encoder(clip, runtime.device, fp16_on_cpu="fp32")  # precision aside, the same encoder
    check_encoder(encoder.identity, feats.image_attrs, checkpoint.get("encoder", {}))
    model = load_trained_model(feats, checkpoint, clip, encoder.device).to(encoder.device)
    with torch.inference_mode():
        side = model.class_side()
    names = feats.classes["names"]
    image_size = json.loads(encoder.identity["image_size"])[0]
    transform = ViewTransform(encoder.preprocess, image_size, feats.image_attrs.get("test_views", "none"))
    return Predictor(encoder, model, names, feats.dimensions, library_texts(names, feats.library_mask),
                     class_log_prior(feats.classes["train_counts"]).to(encoder.device), transform,
                     kept_fusion(checkpoint, evaluate), runtime, side)


def check_encoder(identity: dict, image_attrs: dict, checkpoint_encoder: dict) -> None:
    """The clip params must name the encoder that made images.h5 (and the model trained on it)."""
    for source, recorded in ((str(paths.IMAGES_H5), image_attrs), (str(paths.CHECKPOINT), checkpoint_encoder)):
        for key, value in identity.items():
            if key not in IDENTITY_KEYS_IGNORED and key in recorded and recorded[key] != value:
                raise UserError(f"model/encoder mismatch: {source} was made with clip "
                                f"{store.as_param(key, recorded[key])}, but the clip params give "
                                f"{store.as_param(key, value)}; set the clip section back to the encoder the "
                                "features were made with, or rerun `dvc repro` to retrain on the new one.")


def library_texts(class_names: list[str], mask: np.ndarray) -> list[list[str | None]]:
    """(C, V) texts of library.jsonl, refused when the file changed since library.h5 was embedded from it."""
    table = read_library(paths.LIBRARY, class_names)
    embedded_from = store.read_attrs(paths.LIBRARY_H5).get("library_sha256")
    if embedded_from != table.sha256 or not np.array_equal(table.mask, mask):
        raise UserError(f"{paths.LIBRARY} changed since {paths.LIBRARY_H5} was made from it; rerun "
                        "`mdpr embed-library` and `mdpr train` (or `dvc repro`).")
    texts: list[list[str | None]] = [[None] * mask.shape[1] for _ in class_names]
    for (c, v), text in zip(zip(*np.nonzero(table.mask)), table.texts):
        texts[c][v] = text
    return texts


@torch.inference_mode()
def predict(predictor: Predictor, images: list[Path], top_k: int = 5, skip_unreadable: bool = False,
            progress: bool = False) -> tuple[list[Prediction], list[str]]:
    """Predictions for the readable images (input order) and 'path: error' of each skipped one."""
    names = [str(p) for p in images]
    rows = ImageRows(names, open_rgb, predictor.transform, 0, len(names))
    loader = DataLoader(rows, batch_size=predictor.runtime.batch_size, num_workers=predictor.runtime.num_workers,
                        collate_fn=collate_views, pin_memory=predictor.encoder.device.type == "cuda")
    results, skipped, position = [], [], 0
    with tqdm(total=len(names), unit="img", desc="predict", disable=not progress, mininterval=1.0) as bar:
        for stacks, errors in loader:  # stacks (B', 1 + A, 3, S, S): readable images only
            batch_names = names[position:position + len(errors)]
            position += len(errors)
            bar.update(len(errors))
            failed = [err for err in errors if err]
            if failed and not skip_unreadable:
                raise UserError(f"image {failed[0]}; replace or remove it, or pass --skip-unreadable.")
            skipped += failed
            if stacks is not None:
                feats = predictor.encoder.encode_image_batch(stacks.flatten(0, 1))  # (B' * (1 + A), d)
                feats = torch.from_numpy(feats).unflatten(0, stacks.shape[:2])  # (B', 1 + A, d)
                scored = feats[:, 1:] if stacks.shape[1] > 1 else feats  # the views evaluate scores
                readable = [name for name, error in zip(batch_names, errors) if not error]
                results += score(predictor, scored, readable, top_k)
    return results, skipped


@torch.inference_mode()
def score(predictor: Predictor, image_feats: torch.Tensor, names: list[str], top_k: int) -> list[Prediction]:
    """Fused probabilities and the top class's routing for L2-normalised image features (B, A, d), A views each.

    Logits and routing weights are averaged over the views, as the evaluate stage does for cached test views.
    """
    device = predictor.encoder.device
    outputs = view_mean(lambda view: scores(predictor.model, view, side=predictor.side),
                        image_feats.to(device))  # averaged over views
    logits = fuse(outputs["base"], outputs["sem"], *predictor.fusion, predictor.log_prior)
    weights = outputs["weights"]  # (B, C, V)
    probs, classes = logits.softmax(-1).topk(min(top_k, logits.shape[1]), dim=-1)  # (B, k) each
    top_weights = weights.gather(1, classes[..., None].expand(-1, -1, weights.shape[-1])).cpu().numpy()  # (B, k, V)
    results = []
    for name, row_probs, row_classes, row_weights in zip(names, probs.cpu().tolist(), classes.cpu().tolist(),
                                                         top_weights):
        ranked = [(c, predictor.class_names[c], p) for c, p in zip(row_classes, row_probs)]
        results.append(Prediction(name, ranked, [explain(predictor, c, w) for c, w in zip(row_classes, row_weights)]))
    return results


def explain(predictor: Predictor, class_index: int, weights: np.ndarray) -> Explanation:
    """A class's routing weights (V,) as {dimension: summed weight}, its most-routed description, its entropy."""
    dims = predictor.dimensions
    routing = {dim: float(total) for dim, total in per_dimension(weights, dims).items()}
    slot = int(np.argmax(weights))  # masked slots have weight 0
    valid = int(predictor.model.library_mask[class_index].sum())
    entropy = float(routing_entropy(weights, valid)) if valid >= 2 else None
    return Explanation(routing, Description(dims[slot], predictor.texts[class_index][slot] or "", float(weights[slot])),
                       entropy)


def _explanation_record(explanation: Explanation) -> dict:
    return {"routing": {dim: round(w, 6) for dim, w in explanation.routing.items()},
            "entropy": None if explanation.entropy is None else round(explanation.entropy, 6),
            "flat": explanation.flat,
            "description": {"dimension": explanation.description.dimension, "text": explanation.description.text,
                            "weight": round(explanation.description.weight, 6)}}


def as_record(result: Prediction) -> dict:
    """A JSON-ready dict of one prediction: the top class's explanation at the top level, every class's in top_k."""
    return {"path": result.path,
            "top_k": [{"index": c, "class": name, "prob": round(p, 6), **_explanation_record(explanation)}
                      for (c, name, p), explanation in zip(result.top_k, result.explanations)],
            **_explanation_record(result.explanations[0]), "dominant_dimension": result.dominant_dimension}


def as_csv_row(result: Prediction) -> dict:
    """A flat row of the --out CSV: path, top-1 class and probability, top-k list, routing, dominant dimension."""
    (index, name, prob), top = result.top_k[0], _explanation_record(result.explanations[0])
    return {"path": result.path, "top1_class": name, "top1_index": index, "top1_prob": round(prob, 6),
            "top_k": ";".join(f"{n}:{p:.6f}" for _c, n, p in result.top_k),
            "dominant_dimension": result.dominant_dimension,
            **{f"routing_{dim}": w for dim, w in top["routing"].items()}, "entropy": top["entropy"],
            "flat": top["flat"], "description_dimension": result.description.dimension,
            "description": result.description.text}


def format_text(result: Prediction) -> str:
    """One image's block: path, then per ranked class its probability, its routing per dimension with the entropy,
    and its most-routed description, or "flat" when the weights cannot be told from uniform."""
    width = max(len(name) for _c, name, _p in result.top_k)
    lines = [result.path]
    for rank, ((_c, name, prob), explanation) in enumerate(zip(result.top_k, result.explanations), 1):
        routing = ", ".join(f"{dim} {weight:.3f}" for dim, weight in explanation.routing.items())
        entropy = "" if explanation.entropy is None else f" (entropy {explanation.entropy:.3f})"
        described = explanation.description
        top = (f"flat: no description stands out (entropy > {FLAT_ENTROPY})" if explanation.flat else
               f"top description [{described.dimension}, {described.weight:.3f}]: {described.text}")
        lines += [f"  {rank}. {name:<{width}}  {prob:.4f}", f"     routing: {routing}{entropy}", f"     {top}"]
    return "\n".join(lines)
