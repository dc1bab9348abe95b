"""MDPR's routing, measured where it must matter: the two-mode routing world (tests/helpers/worlds.py), built through
the real stages, trained with the project's model defaults (train.epochs cut to 10 to stay fast).

With the defaults, over train seeds 0, 1, 2: the router puts a mean weight >= 0.5 on the description that matches
each val image's mode (of its true class), and `model.router: attention` beats the `mean` ablation by >= 3 points of
val top-1 (the fused MDPR prediction, as training keeps it). Six trainings: about 60 s of CPU (3 min wall on
the loaded 2-core machine), which is why it is more than 10 s.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from pipeline.config.params import defaults
from pipeline.core import paths
from tests.helpers.worlds import build_import_world, inside, two_mode_world

WORLD = {"classes": 20, "n_max": 40, "noise": 1.5}
SEEDS = (0, 1, 2)
TRAIN = {"epochs": 10}


@pytest.fixture(scope="module")
def routing_world(tmp_path_factory):
    arrays, descriptions, norms, modes = two_mode_world(**WORLD)
    world = build_import_world(tmp_path_factory.mktemp("routing") / "project", arrays, descriptions, norms,
                               base=defaults(), overrides={"train": TRAIN})
    return world, arrays, modes


def _train(world, arrays, router: str, seed: int, evaluate: bool = False) -> dict:
    """Train (and evaluate) with `model.router` and `train.seed`: the kept val top-1, the val routing of each image's
    true class (N, V), and metrics.json when evaluated."""
    from pipeline.features.caches import load_features
    from pipeline.model.checkpoint import load_checkpoint, load_trained_model
    from pipeline.model.inference import branch_logits
    from stages import evaluate as evaluate_stage
    from stages import train

    params = yaml.safe_load((world / "params.yaml").read_text())
    params["model"]["router"], params["train"]["seed"] = router, seed
    (world / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with inside(world):
        train.run()
        if evaluate:
            evaluate_stage.run()
        feats = load_features()
        checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
        model = load_trained_model(feats, checkpoint)
        val_feats, val_labels = feats.scored("val")
        assert np.array_equal(val_labels, arrays["val_labels"])  # rows in the import's order: the modes apply
        routing = branch_logits(model, val_feats, labels=val_labels)["routing"].numpy()  # (N, V)
        metrics = json.loads(paths.METRICS.read_text()) if evaluate else None
    return {"val_top1": checkpoint["kept"]["val_top1"], "routing": routing, "metrics": metrics}


def test_routing_picks_the_matching_description_and_beats_the_mean(routing_world):
    world, arrays, modes = routing_world
    rows = np.arange(len(arrays["val_labels"]))
    for seed in SEEDS:
        attention = _train(world, arrays, "attention", seed, evaluate=seed == 0)
        mean = _train(world, arrays, "mean", seed, evaluate=seed == 0)
        matching = attention["routing"][rows, modes["val"]].mean()
        assert matching >= 0.5, f"seed {seed}: weight on the matching description {matching:.3f}"
        gain = 100 * (attention["val_top1"] - mean["val_top1"])
        print(f"seed {seed}: matching weight {matching:.3f}, val top-1 attention {100 * attention['val_top1']:.1f} "
              f"mean {100 * mean['val_top1']:.1f}")  # shown with -s
        assert gain >= 3, f"seed {seed}: attention - mean = {gain:.1f} points of val top-1"
        np.testing.assert_allclose(mean["routing"], 0.2, atol=1e-6)  # mean: uniform over the 5 descriptions
        if seed == 0:  # both routers ran end to end: metrics.json's routing block tells them apart
            flat, routed = mean["metrics"]["val"]["routing"], attention["metrics"]["val"]["routing"]
            assert flat["entropy"] == pytest.approx(1.0) and flat["image_std"]["mean"] == pytest.approx(0.0)
            assert routed["entropy"] < 0.5 and routed["top_weight"] > 0.5 and routed["image_std"]["mean"] > 0.1
