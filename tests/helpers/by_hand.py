"""The evaluation recomputed by hand (numpy, float64, the formulas written out) as the reference for the tests.

    expected = evaluate_by_hand(project)   # {"logits": {method: (N, C)}, "preds", "metrics", "per_class", "routing",
                                           #  "ids": (N,) test image ids}
    logits, weights = scores_by_hand(views, class_feats, library_feats, mask, state_dict, asdict(model_params),
                                     fusion_weight=0.5, posthoc_tau=0.0, train_counts=counts)

No project code computes these numbers: only the cached arrays and the checkpoint's tensors are read. The formulas:
zero-shot = 100 cos(f, t_c); zero-shot + library = 100 cos(f, mean_v e_cv); base = s cos(f, t_c + alpha r_c);
semantic = s cos(f, x_c), with x_c = W_o (sum_v a_v (W_v e_cv + b_v)) + b_o the multi-head attention of the query
W_q f + b_q over the keys W_k e_cv + b_k (invalid descriptions masked), logits t q.k / sqrt(e) with t = min(exp(log
t), 1000) (0 with `model.router: mean`), and e_cv times its raw norm from library.h5 with `router_keys: raw`;
fused = w base + (1 - w) semantic - tau log prior. Multi-view images: each view L2-normalised, every output averaged
over the views. The routing block of metrics.json: per image the true class's weights, entropy / log(valid count),
max, exp(entropy); per dimension the mean, and per class the std over its images, in plain loops.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from pipeline.core import paths
from pipeline.features import store


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def scores_by_hand(views, class_feats, library_feats, mask, state: dict, model: dict,
                   fusion_weight: float = 0.5, posthoc_tau: float = 0.0, train_counts=None,
                   norms=None) -> tuple[dict, np.ndarray]:
    """Logits (N, C) of every method and routing weights (N, C, V), averaged over the A views of views (N, A, d);
    `norms` (C, V): library.h5's raw description norms (needed with router_keys: raw)."""
    assert not model["adapter"], "the hand computation covers the head without CLIP-Adapter"
    f = _unit(np.asarray(views, np.float64))  # (N, A, d)
    t, e = np.asarray(class_feats, np.float64), np.asarray(library_feats, np.float64)  # (C, d), (C, V, d)
    valid = np.asarray(mask, bool)  # (C, V)
    w = {k: v.double().numpy() for k, v in state.items()}
    scale = min(np.exp(w["logit_scale"]), 100.0)
    logits = {"zero_shot": 100 * f @ t.T,
              "zero_shot_library": 100 * f @ _unit((e * valid[..., None]).sum(1)).T,
              "base": scale * f @ _unit(t + model["residual_scale"] * w["residual"]).T}
    wq, wk, wv = np.split(w["router.attn.in_proj_weight"], 3)  # (d, d) each
    bq, bk, bv = np.split(w["router.attn.in_proj_bias"], 3)
    dim, heads = t.shape[1], model["heads"]
    head = dim // heads
    q = (f @ wq.T + bq).reshape(*f.shape[:2], heads, head)  # (N, A, h, e)
    keys = e * np.asarray(norms, np.float64)[..., None] if model["router_keys"] == "raw" else e  # (C, V, d)
    k = (keys @ wk.T + bk).reshape(*e.shape[:2], heads, head)  # (C, V, h, e)
    v = (keys @ wv.T + bv).reshape(*e.shape[:2], heads, head)  # (C, V, h, e)
    temperature = 0.0 if model["router"] == "mean" else min(np.exp(w["router.log_scale"]), 1000.0)
    attention = temperature * np.einsum("nahe,cvhe->nachv", q, k) / np.sqrt(head)
    attention = np.where(valid[None, None, :, None, :], attention, -np.inf)
    attention = np.exp(attention - attention.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)  # (N, A, C, h, V)
    mixed = np.einsum("nachv,cvhe->nache", attention, v).reshape(*attention.shape[:3], dim)  # (N, A, C, d)
    routed = mixed @ w["router.attn.out_proj.weight"].T + w["router.attn.out_proj.bias"]  # (N, A, C, d)
    logits["semantic"] = scale * np.einsum("nad,nacd->nac", f, _unit(routed))
    logits = {method: values.mean(1) for method, values in logits.items()}  # averaged over the views
    log_prior = 0.0
    if posthoc_tau:
        counts = np.maximum(np.asarray(train_counts, np.float64), 1)
        log_prior = posthoc_tau * np.log(counts / counts.sum())
    logits["mdpr"] = fusion_weight * logits["base"] + (1 - fusion_weight) * logits["semantic"] - log_prior
    return logits, attention.mean(3).mean(1)  # weights: mean over heads, then over views


def metrics_by_hand(preds: np.ndarray, labels: np.ndarray, groups: list[str],
                    logits: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """top1, (with logits (N, C): top5, the true class among the 5 highest,) mean_class and each present group's mean
    per-class accuracy; and the per-class accuracies (C,)."""
    per_class = np.array([np.mean(preds[labels == c] == c) if np.any(labels == c) else np.nan
                          for c in range(len(groups))])
    report = {"top1": float(np.mean(preds == labels)), "mean_class": float(np.nanmean(per_class))}
    if logits is not None:
        beaten_by = (logits > logits[np.arange(len(labels)), labels][:, None]).sum(1)  # classes scored above it
        report["top5"] = float(np.mean(beaten_by < 5))
    for group in ("many", "medium", "few"):
        members = [c for c, g in enumerate(groups) if g == group and not np.isnan(per_class[c])]
        if members:
            report[group] = float(np.mean(per_class[members]))
    return report, per_class


def routing_by_hand(true_weights: np.ndarray, labels: np.ndarray, groups: list[str], dimensions: list[str],
                    mask: np.ndarray) -> dict:
    """metrics.json's routing block from the true-class weights (N, V), written out image by image."""
    entropies, tops, effective, sums = [], [], [], []
    for weights, label in zip(true_weights.astype(np.float64), labels):
        entropy = -sum(w * np.log(w) for w in weights if w > 0)
        if mask[label].sum() >= 2:
            entropies.append(entropy / np.log(mask[label].sum()))
        tops.append(max(weights))
        effective.append(np.exp(entropy))
        sums.append({dim: sum(w for w, d in zip(weights, dimensions) if d == dim) for dim in dimensions})
    image_groups = [groups[label] for label in labels]
    dims = {name: {dim: np.mean([row[dim] for row, g in zip(sums, image_groups) if name in ("all", g)])
                   for dim in dimensions}
            for name in ("all", "many", "medium", "few") if name == "all" or name in image_groups}
    spread = {}
    for dim in dict.fromkeys(dimensions):
        per_class = [[row[dim] for row, y in zip(sums, labels) if y == c] for c in sorted(set(labels.tolist()))]
        spread[dim] = np.mean([np.std(values) for values in per_class if len(values) >= 2])
    spread["mean"] = np.mean(list(spread.values()))
    return {"entropy": np.mean(entropies), "top_weight": np.mean(tops), "effective_descriptions": np.mean(effective),
            "dimensions": dims, "image_std": spread}


def evaluate_by_hand(project: Path) -> dict:
    """What the evaluate stage must write for `project` (its caches and checkpoint): the test split's logits,
    predictions, metrics, per-class accuracies and routing, and the val split's metrics (None without val). The
    fusion weight and post-hoc tau are the ones training kept (recorded in the checkpoint)."""
    project = Path(project)
    images, _ = store.read_h5(project / paths.IMAGES_H5)
    text, _ = store.read_h5(project / paths.CLASSES_H5)
    library, _ = store.read_h5(project / paths.LIBRARY_H5)
    classes = json.loads((project / paths.CLASSES).read_text())
    checkpoint = torch.load(project / paths.CHECKPOINT, weights_only=True)
    kept = checkpoint["kept"]

    def split_by_hand(split: dict):
        views = split["views"] if "views" in split else split["features"][:, None]  # (N, A, d)
        logits, weights = scores_by_hand(views, text[""]["features"], library[""]["features"], library[""]["mask"],
                                         checkpoint["state_dict"], checkpoint["model"], kept["fusion_weight"],
                                         kept["posthoc_tau"], classes["train_counts"], library[""].get("norms"))
        preds = {method: values.argmax(-1) for method, values in logits.items()}
        scored = {method: metrics_by_hand(pred, split["labels"], classes["groups"], logits[method])
                  for method, pred in preds.items()}
        metrics = {m: r for m, (r, _) in scored.items()}
        metrics["routing"] = routing_by_hand(weights[np.arange(len(split["labels"])), split["labels"]],
                                             split["labels"], classes["groups"], list(library[""]["dimensions"]),
                                             library[""]["mask"])
        return logits, weights, preds, metrics, {m: c for m, (_, c) in scored.items()}

    test = images["test"]
    logits, weights, preds, metrics, per_class = split_by_hand(test)
    val_metrics = split_by_hand(images["val"])[3] if "val" in images else None
    labels = test["labels"]
    true_weights = weights[np.arange(len(labels)), labels]  # (N, V): routing of each image's own class
    dimensions = list(library[""]["dimensions"])
    image_groups = np.array([classes["groups"][label] for label in labels])
    routing = {group: {dim: float(true_weights[image_groups == group][:, [i for i, d in enumerate(dimensions)
                                                                          if d == dim]].sum(1).mean())
                       for dim in dimensions}
               for group in ("many", "medium", "few") if np.any(image_groups == group)}
    return {"logits": logits, "preds": preds, "metrics": metrics, "val_metrics": val_metrics, "kept": kept,
            "per_class": per_class, "routing": routing, "ids": list(test["ids"])}


def probabilities_by_hand(expected: dict, image_id: str) -> np.ndarray:
    """The fused prediction's class probabilities (C,) of one test image: the softmax of its `mdpr` logits."""
    logits = expected["logits"]["mdpr"][expected["ids"].index(image_id)]
    probs = np.exp(logits - logits.max())
    return probs / probs.sum()


def assert_evaluation_matches(project: Path, expected: dict) -> None:
    """metrics.json, per_class.csv and routing.json of `project` hold the hand-computed numbers (6 decimals)."""
    project = Path(project)
    written = json.loads((project / paths.METRICS).read_text())
    assert written["kept"] == expected["kept"]
    assert ("val" in written) == (expected["val_metrics"] is not None)
    for table, reference in ((written, expected["metrics"]), (written.get("val"), expected["val_metrics"])):
        if reference is None:
            continue
        assert set(table) - {"val", "kept"} == set(reference)
        _assert_routing_block(table["routing"], reference["routing"])
        for method, values in reference.items():
            if method == "routing":
                continue
            assert set(table[method]) == set(values), method
            for key, value in values.items():
                assert abs(table[method][key] - value) <= 1e-6, (method, key, table[method][key], value)
    with open(project / paths.PER_CLASS) as handle:
        rows = list(csv.DictReader(handle))
    for method, per_class in expected["per_class"].items():
        np.testing.assert_allclose([float(row[method]) for row in rows], per_class, atol=1e-6, err_msg=method)
    routing = json.loads((project / paths.ROUTING).read_text())
    assert set(routing) == set(expected["routing"])
    for group, dims in expected["routing"].items():
        assert set(routing[group]) == set(dims), group
        np.testing.assert_allclose([routing[group][dim] for dim in dims], list(dims.values()), atol=1.5e-6,
                                   err_msg=group)


def _assert_routing_block(written: dict, expected: dict, path: str = "routing") -> None:
    """The same keys, nested, and every figure within 1.5e-6 (6 decimals written)."""
    assert set(written) == set(expected), path
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_routing_block(written[key], value, f"{path}.{key}")
        else:
            assert abs(written[key] - value) <= 1.5e-6, (f"{path}.{key}", written[key], value)
