"""Choices on val, never on test: `auto` fusion values and the kept epoch depend on train and val only, the val
metrics are reported, and a dataset without a val split says so (and refuses `auto`).

    .venv/bin/python -m pytest tests/e2e/test_val_protocol.py -q
"""
import json

import numpy as np
import pytest
import torch

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.features import store
from stages import evaluate, train
from tests.helpers.worlds import copy_world, inside, write_params

AUTO = {"evaluate": {"fusion_weight": "auto", "posthoc_tau": "auto"}}


def _rewrite_images(world, change) -> None:
    """images.h5 of `world` rewritten with `change(groups)` applied (same attributes)."""
    groups, attrs = store.read_h5(world / paths.IMAGES_H5)
    change(groups)
    store.write_h5(world / paths.IMAGES_H5, groups, attrs)


def _train_and_evaluate(world):
    with inside(world):
        train.run()
        evaluate.run()
    checkpoint = torch.load(world / paths.CHECKPOINT, weights_only=True)
    return checkpoint, json.loads((world / paths.METRICS).read_text())


def _scramble_test(groups) -> None:
    """Other test features: the same rows, each replaced by another image's (so every test prediction moves)."""
    test = groups["test"]["features"]
    rng = np.random.default_rng(0)
    noise = test[rng.permutation(len(test))] + 0.5 * rng.standard_normal(test.shape).astype(test.dtype)
    groups["test"]["features"] = noise / np.linalg.norm(noise, axis=1, keepdims=True)


def test_changing_only_the_test_features_changes_no_choice(trained_world, tmp_path):
    worlds = [copy_world(trained_world, tmp_path / name) for name in ("original", "other_test")]
    for world in worlds:
        write_params(world, AUTO)
    _rewrite_images(worlds[1], _scramble_test)
    (kept_a, metrics_a), (kept_b, metrics_b) = (_train_and_evaluate(world) for world in worlds)
    assert metrics_a["kept"] == metrics_b["kept"] == kept_a["kept"] == kept_b["kept"]
    assert kept_a["kept"]["fusion_weight_from"] == kept_a["kept"]["posthoc_tau_from"] == "val"
    assert kept_a["history"] == kept_b["history"]  # every epoch's val choice and score
    assert all(torch.equal(kept_a["state_dict"][k], v) for k, v in kept_b["state_dict"].items())
    assert metrics_a["val"] == metrics_b["val"]
    assert metrics_a["mdpr"] != metrics_b["mdpr"]  # the test split did change, and only the report saw it


def test_auto_values_are_recorded_and_used_for_the_test_report(trained_world, tmp_path):
    world = copy_world(trained_world, tmp_path / "project")
    write_params(world, AUTO)
    checkpoint, metrics = _train_and_evaluate(world)
    kept = metrics["kept"]
    best = max(checkpoint["history"], key=lambda h: h["val_mean_class"])
    assert kept["epoch"] == best["epoch"] and kept["fusion_weight"] == best["val_fusion_weight"]
    assert kept["posthoc_tau"] == best["val_posthoc_tau"]
    assert metrics["val"]["mdpr"]["mean_class"] == pytest.approx(kept["val_mean_class"], abs=1e-6)
    if kept["fusion_weight"] in (0.0, 1.0):  # then the fused prediction is one branch
        branch = "base" if kept["fusion_weight"] == 1.0 else "semantic"
        assert kept["posthoc_tau"] > 0 or metrics["mdpr"] == metrics[branch]


def test_without_a_val_split_auto_is_refused_and_the_summary_says_the_last_epoch_is_kept(trained_world, tmp_path,
                                                                                        capsys):
    world = copy_world(trained_world, tmp_path / "project")
    _rewrite_images(world, lambda groups: groups.pop("val"))
    write_params(world, AUTO)
    with inside(world), pytest.raises(UserError, match="evaluate.fusion_weight and evaluate.posthoc_tau = auto "
                                                       "chooses on the val split, but dataset 'synthetic-lt' has none"):
        train.run()
    write_params(world, {"evaluate": {"fusion_weight": 0.5, "posthoc_tau": 0.0}})
    checkpoint, metrics = _train_and_evaluate(world)
    assert "val" not in metrics and metrics["kept"]["epoch"] == len(checkpoint["history"])
    assert metrics["kept"]["epoch_from"] == "last epoch (no val split)"
    assert "no val split, so the last epoch is kept" in capsys.readouterr().out
