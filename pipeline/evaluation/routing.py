"""Where the router looks, and whether it looks anywhere: routing weights of each image's true class, summarised.

    weights = dimension_weights(true_class_routing, test_labels, classes["groups"], dimensions)   # routing.json
    block = routing_summary(true_class_routing, labels, classes["groups"], dimensions, library_mask)  # metrics.json
    per_dimension(one_image_weights, dimensions)      # {dimension: weight} (slots of a dimension summed)

The `routing` block of metrics.json (per split) holds, over the split's images and their true class w (V,):
- entropy: mean of H(w) / log(V_c), V_c the class's valid descriptions (1 = the uniform mean, no routing); images of
  a class with a single valid description are left out (nothing to route between; no key when no image is left);
- top_weight: mean of max_v w_v; effective_descriptions: mean of exp(H(w)) (1 to V);
- dimensions: mean weight per dimension (slots of a dimension summed) on all images and on many / medium / few;
- image_std: per dimension, the std across a class's images of that dimension's weight, averaged over the classes
  with at least two images (0 = the same weights for every image: routing that ignores the image), and its mean over
  dimensions under `mean`.
"""
from __future__ import annotations

import numpy as np

from pipeline.data.manifest import GROUPS
from pipeline.model.metrics import routing_entropy

ALL = "all"


def per_dimension(weights: np.ndarray, dimensions: list[str]) -> dict[str, np.ndarray]:
    """Routing weights (..., V) summed over the slots of each dimension: {dimension: (...)}."""
    return {dim: weights[..., [i for i, d in enumerate(dimensions) if d == dim]].sum(-1)
            for dim in dict.fromkeys(dimensions)}


def dimension_weights(routing: np.ndarray, labels: np.ndarray, groups: list[str],
                      dimensions: list[str]) -> dict[str, dict[str, float]]:
    """Mean routing weight per dimension (slots of one dimension summed) for many/medium/few test images."""
    out = {}
    image_groups = np.array([groups[label] for label in labels])
    for group in GROUPS:
        rows = routing[image_groups == group]  # (n, V)
        if len(rows):
            out[group] = {dim: round(float(sums.mean()), 6) for dim, sums in per_dimension(rows, dimensions).items()}
    return out


def routing_summary(routing: np.ndarray, labels: np.ndarray, groups: list[str], dimensions: list[str],
                    mask: np.ndarray) -> dict:
    """The `routing` block of one split (module docstring): routing (N, V) true-class weights, labels (N,),
    groups (C,), dimensions (V,), mask (C, V) valid descriptions; figures rounded to 1e-6."""
    routing = routing.astype(np.float64)
    counts = mask.sum(1)[labels]  # (N,) valid descriptions of each image's class
    routed = counts >= 2
    entropy = routing_entropy(routing[routed], counts[routed])  # (n,)
    plain = -(routing * np.log(np.where(routing > 0, routing, 1.0))).sum(-1)  # (N,) H in nats
    by_dimension = per_dimension(routing, dimensions)  # {dimension: (N,) summed weight}
    dims = {ALL: {dim: float(sums.mean()) for dim, sums in by_dimension.items()},
            **dimension_weights(routing, labels, groups, dimensions)}
    spread = {dim: [sums[labels == c].std() for c in np.unique(labels) if (labels == c).sum() >= 2]
              for dim, sums in by_dimension.items()}
    image_std = {dim: float(np.mean(values)) if values else 0.0 for dim, values in spread.items()}
    block = {"entropy": float(entropy.mean()) if len(entropy) else None, "top_weight": float(routing.max(1).mean()),
             "effective_descriptions": float(np.exp(plain).mean()), "dimensions": dims,
             "image_std": {**image_std, "mean": float(np.mean(list(image_std.values())))}}
    return _rounded({key: value for key, value in block.items() if value is not None})


def _rounded(value):
    return {k: _rounded(v) for k, v in value.items()} if isinstance(value, dict) else round(value, 6)
