"""Where the router looks: routing weights summed per description dimension, by long-tail group.

    weights = dimension_weights(true_class_routing, test_labels, classes["groups"], dimensions)   # routing.json
    per_dimension(one_image_weights, dimensions)      # {dimension: weight} (slots of a dimension summed)
"""
from __future__ import annotations

import numpy as np

from pipeline.data.manifest import GROUPS


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
