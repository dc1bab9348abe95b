"""The stages after embedding, run in-process on the tiny world: outputs, determinism, and refusals."""
import csv
import json

import numpy as np
import pytest
import torch

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.evaluation.methods import METHODS
from pipeline.features import store
from stages import embed_library, evaluate, train
from tests.helpers.worlds import write_params


def test_confusion_ranks_every_class(embedded_world):
    report = json.loads((embedded_world / paths.CONFUSION).read_text())
    assert len(report["classes"]) == 6
    for entry in report["classes"]:
        assert len(entry["confused_with"]) == 3
        assert entry["index"] not in [c["index"] for c in entry["confused_with"]]
        counts = [c["count"] for c in entry["confused_with"]]
        assert counts == sorted(counts, reverse=True)


def test_library_features_and_prior(trained_world):
    groups, attrs = store.read_h5(trained_world / paths.LIBRARY_H5)
    text, _ = store.read_h5(trained_world / paths.CLASSES_H5)
    lib = groups[""]
    assert lib["features"].shape == (6, 5, 64) and lib["mask"].all()
    assert list(lib["dimensions"]) == ["general_appearance", "fine_grained_appearance", "functionality", "context",
                                       "differential"]
    expected_prior = np.einsum("cvd,cd->cv", lib["features"], text[""]["features"])
    np.testing.assert_allclose(lib["prior"], expected_prior, atol=1e-6)
    assert attrs["class_hash"] == json.loads((trained_world / paths.CLASSES).read_text())["class_hash"]


def test_metrics_have_every_method_and_only_present_groups(trained_world):
    metrics = json.loads((trained_world / paths.METRICS).read_text())
    classes = json.loads((trained_world / paths.CLASSES).read_text())
    present = set(classes["groups"])
    assert set(metrics) == set(METHODS)
    for values in metrics.values():
        assert set(values) == {"top1", "mean_class"} | present
        assert all(0 <= v <= 1 for v in values.values())
    with open(trained_world / paths.PER_CLASS) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["train_count"]) for r in rows] == classes["train_counts"]
    for plot in ("accuracy_vs_frequency.png", "routing_by_dimension.png"):
        assert (trained_world / paths.METRICS_DIR / "plots" / plot).read_bytes()[:4] == b"\x89PNG"


def test_training_and_evaluation_are_deterministic(trained_project, trained_world):
    train.run()
    evaluate.run()
    assert paths.CHECKPOINT.read_bytes() == (trained_world / paths.CHECKPOINT).read_bytes()
    assert paths.METRICS.read_bytes() == (trained_world / paths.METRICS).read_bytes()


def test_checkpoint_records_features_and_loads_safely(trained_world):
    checkpoint = torch.load(trained_world / paths.CHECKPOINT, weights_only=True)
    assert set(checkpoint["feature_sha256"]) == {"images.h5", "classes.h5", "library.h5"}
    assert checkpoint["train"]["seed"] == 0 and len(checkpoint["history"]) == 3


def test_evaluate_refuses_a_model_trained_on_other_features(trained_project):
    write_params(trained_project, {"clip": {"templates": "ensemble"}})
    from stages import embed_classes

    embed_classes.run()
    embed_library.run()
    with pytest.raises(UserError, match="trained on other features \\(classes.h5, library.h5 changed"):
        evaluate.run()


def test_library_from_another_encoder_is_refused(trained_project):
    write_params(trained_project, {"clip": {"seed": 1}})
    embed_library.run()            # library.h5 now made by another (random-init) encoder
    groups, attrs = store.read_h5(paths.LIBRARY_H5)
    assert attrs["pretrained"] == "none(seed=1)"
    with pytest.raises(UserError, match="library.h5 was made with pretrained: none, clip.seed: 1 but the current "
                                        "inputs need pretrained: none, clip.seed: 0;") as err:
        train.run()
    assert "seed=" not in str(err.value)


def test_fusion_weight_one_is_the_base_branch(trained_project):
    write_params(trained_project, {"evaluate": {"fusion_weight": 1.0}})
    evaluate.run()
    metrics = json.loads(paths.METRICS.read_text())
    assert metrics["mdpr"] == metrics["base"]


def test_caches_of_another_class_list_are_refused(project):
    write_params(project, {"dataset": {"num_classes": 5}})
    from stages import confusion, prepare

    prepare.run()                  # a new class list; images.h5 still holds the 6-class features
    with pytest.raises(UserError, match="images.h5 was made with class_hash: "):
        confusion.run()
