"""The stages after embedding, run in-process on the tiny world: outputs, determinism, and refusals."""
import csv
import itertools
import json

import numpy as np
import pytest
import torch

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.evaluation.methods import METHODS
from pipeline.features import store
from stages import embed_library, evaluate, train
from tests.helpers.by_hand import assert_evaluation_matches, evaluate_by_hand
from tests.helpers.worlds import write_params


def test_confusion_counts_and_accuracies_by_hand(embedded_world):
    report = json.loads((embedded_world / paths.CONFUSION).read_text())
    images, _ = store.read_h5(embedded_world / paths.IMAGES_H5)
    text, _ = store.read_h5(embedded_world / paths.CLASSES_H5)
    labels = images["train"]["labels"]
    logits = 100 * images["train"]["features"].astype(np.float64) @ text[""]["features"].astype(np.float64).T
    predicted = logits.argmax(1)  # zero-shot prediction of every train image
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert report["train_accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6) and report["top_k"] == 3
    assert [entry["index"] for entry in report["classes"]] == list(range(6))
    for c, entry in enumerate(report["classes"]):
        mine = labels == c
        counts = np.bincount(predicted[mine], minlength=6)  # where class c's images went
        mean_prob = probs[mine].mean(0)
        assert entry["n_train"] == mine.sum() and entry["name"] == text[""]["names"][c]
        assert entry["zero_shot_train_acc"] == pytest.approx(counts[c] / mine.sum(), abs=1e-6)
        # most predictions first; ties by the mean probability the other class gets
        ranked = sorted((j for j in range(6) if j != c), key=lambda j: (-counts[j], -mean_prob[j]))[:3]
        assert [o["index"] for o in entry["confused_with"]] == ranked
        assert [o["count"] for o in entry["confused_with"]] == [counts[j] for j in ranked]
        np.testing.assert_allclose([o["mean_prob"] for o in entry["confused_with"]], mean_prob[ranked], atol=1e-6)
    assert 0 < report["train_accuracy"] < 1 and any(entry["confused_with"][0]["count"] for entry in report["classes"])


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


def test_library_stores_each_descriptions_norm_before_normalisation(trained_world):
    """library.h5 `norms` (for model.router_keys: raw) are the norms of open_clip's own encode_text outputs."""
    import torch

    from pipeline.config.data_params import ClipParams
    from pipeline.config.params import load_params
    from pipeline.features.clip import load_encoder
    from pipeline.library.io import read_library

    lib = store.read_h5(trained_world / paths.LIBRARY_H5)[0][""]
    classes = json.loads((trained_world / paths.CLASSES).read_text())
    table = read_library(trained_world / paths.LIBRARY, classes["names"])
    encoder = load_encoder(load_params(trained_world / "params.yaml", ClipParams), "cpu")
    with torch.no_grad():
        raw = encoder.model.encode_text(encoder.tokenizer(table.texts)).float()  # (R, d), padded, not normalised
    np.testing.assert_allclose(lib["norms"][table.mask], raw.norm(dim=-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(lib["features"][table.mask], (raw / raw.norm(dim=-1, keepdim=True)).numpy(), atol=1e-5)
    assert lib["norms"].min() > 0 and np.ptp(lib["norms"]) > 0  # raw norms vary: the raw keys differ from normalised


def test_every_reported_number_matches_a_hand_computation(trained_world):
    metrics = json.loads((trained_world / paths.METRICS).read_text())
    classes = json.loads((trained_world / paths.CLASSES).read_text())
    present = set(classes["groups"])
    assert set(metrics) == set(METHODS) | {"val", "kept", "routing"}
    assert set(metrics["val"]) == set(METHODS) | {"routing"}
    for values in [metrics[m] for m in METHODS] + [metrics["val"][m] for m in METHODS]:
        assert set(values) == {"top1", "top5", "mean_class"} | present
        assert all(0 <= v <= 1 for v in values.values())
    assert metrics["kept"]["epoch_from"] == "val" and metrics["kept"]["fusion_weight_from"] == "params"
    with open(trained_world / paths.PER_CLASS) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["train_count"]) for r in rows] == classes["train_counts"]
    assert [r["group"] for r in rows] == classes["groups"] and [r["class"] for r in rows] == classes["names"]
    expected = evaluate_by_hand(trained_world)    # metrics.json, per_class.csv and routing.json, recomputed
    assert_evaluation_matches(trained_world, expected)
    for first, second in itertools.combinations(METHODS, 2):   # any two methods swapped would show
        assert not np.array_equal(expected["per_class"][first], expected["per_class"][second]), (first, second)


def test_training_and_evaluation_are_deterministic(trained_project, trained_world):
    train.run()
    evaluate.run()
    assert paths.CHECKPOINT.read_bytes() == (trained_world / paths.CHECKPOINT).read_bytes()
    assert paths.METRICS.read_bytes() == (trained_world / paths.METRICS).read_bytes()


def test_checkpoint_records_features_and_loads_safely(trained_world):
    checkpoint = torch.load(trained_world / paths.CHECKPOINT, weights_only=True)
    assert set(checkpoint["feature_sha256"]) == {"images.h5", "classes.h5", "library.h5"}
    assert checkpoint["train"]["seed"] == 0 and [h["epoch"] for h in checkpoint["history"]] == [0, 1, 2, 3]


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
    with pytest.raises(UserError, match="kept its epoch for evaluate params .*rerun `mdpr train`"):
        evaluate.run()             # the epoch was selected for w = 0.5
    train.run()
    evaluate.run()
    metrics = json.loads(paths.METRICS.read_text())
    assert metrics["mdpr"] == metrics["base"] and metrics["val"]["mdpr"] == metrics["val"]["base"]


def test_fusion_weight_and_posthoc_adjustment_are_applied(trained_project, trained_world):
    write_params(trained_project, {"evaluate": {"fusion_weight": 0.3, "posthoc_tau": 1.0}})
    train.run()                    # the epoch is kept for the evaluate params it will be scored with
    evaluate.run()
    expected = evaluate_by_hand(trained_project)
    assert_evaluation_matches(trained_project, expected)
    plain = evaluate_by_hand(trained_world)      # the defaults (0.5, no adjustment) must differ here
    assert not np.array_equal(expected["per_class"]["mdpr"], plain["per_class"]["mdpr"])


def test_caches_of_another_class_list_are_refused(project):
    write_params(project, {"dataset": {"num_classes": 5}})
    from stages import confusion, prepare

    prepare.run()                  # a new class list; images.h5 still holds the 6-class features
    with pytest.raises(UserError, match="images.h5 was made with class_hash: "):
        confusion.run()
