"""Scoring on tiny fixed problems, checked by hand: each method's predictions, per-class rows, routing, the table."""
import itertools
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from pipeline.config.model_params import ModelParams
from pipeline.evaluation.methods import METHODS, per_class_rows, predict_methods
from pipeline.evaluation.report import format_table
from pipeline.evaluation.routing import dimension_weights, per_dimension, routing_summary
from pipeline.model.losses import class_log_prior
from pipeline.model.mdpr import MDPRModel
from tests.helpers.by_hand import metrics_by_hand, scores_by_hand


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def test_every_method_predicts_what_the_hand_computation_says():
    """4 classes x 3 description slots (two masked), 12 images with 3 unnormalised views each, a non-zero residual,
    fusion weight 0.3 and post-hoc adjustment 0.7: all five methods predict differently here (seed 1)."""
    rng = np.random.default_rng(1)
    class_feats, library = _unit(rng.normal(size=(4, 8))), _unit(rng.normal(size=(4, 3, 8)))
    mask = np.ones((4, 3), bool)
    mask[1, 2] = mask[3, 0] = False
    views = rng.normal(size=(12, 3, 8)).astype(np.float32)
    labels = rng.integers(0, 4, 12)
    counts = [50, 20, 8, 2]
    params = ModelParams(heads=2, dropout=0.0)
    model = MDPRModel(torch.from_numpy(class_feats), torch.from_numpy(library), torch.from_numpy(mask), params, seed=0)
    with torch.no_grad():
        model.residual.copy_(torch.from_numpy(rng.normal(size=(4, 8)).astype(np.float32)))
    preds, routing, top5 = predict_methods(model, views, labels, 0.3, 0.7, class_log_prior(counts), batch_size=5)
    logits, weights = scores_by_hand(views, class_feats, library, mask, model.state_dict(), asdict(params),
                                     fusion_weight=0.3, posthoc_tau=0.7, train_counts=counts)
    for method in METHODS:
        np.testing.assert_array_equal(preds[method], logits[method].argmax(-1), err_msg=method)
        assert top5[method].all(), method                             # C = 4: the true class is always in the top 5
    for first, second in itertools.combinations(METHODS, 2):   # a method scored like another would show
        assert not np.array_equal(preds[first], preds[second]), (first, second)
    np.testing.assert_allclose(routing, weights[np.arange(12), labels], atol=1e-6)   # the true class's weights
    assert np.all(routing[labels == 1][:, 2] == 0) and np.all(routing[labels == 3][:, 0] == 0)   # masked slots

    classes = {"names": list("abcd"), "train_counts": counts, "groups": ["medium", "medium", "few", "few"]}
    rows = per_class_rows(classes, preds, labels)
    assert [(r["class_index"], r["class"], r["train_count"], r["group"]) for r in rows] == [
        (0, "a", 50, "medium"), (1, "b", 20, "medium"), (2, "c", 8, "few"), (3, "d", 2, "few")]
    for method in METHODS:
        _, per_class = metrics_by_hand(preds[method], labels, classes["groups"])
        np.testing.assert_allclose([r[method] for r in rows], per_class, err_msg=method)


def test_routing_is_summed_per_dimension_and_averaged_per_group():
    dimensions = ["context", "differential", "context"]           # two slots of one dimension are summed
    routing = np.array([[0.5, 0.2, 0.3],
                        [0.1, 0.6, 0.3],
                        [0.2, 0.2, 0.6],
                        [0.7, 0.1, 0.2]])                         # (N, V): each image's own class
    labels = np.array([0, 1, 1, 0])
    weights = dimension_weights(routing, labels, ["many", "few"], dimensions)
    assert weights == {"many": {"context": 0.85, "differential": 0.15},    # images 0 and 3
                       "few": {"context": 0.6, "differential": 0.4}}        # images 1 and 2; no medium class
    summed = per_dimension(routing[:2], dimensions)
    np.testing.assert_allclose(summed["context"], [0.8, 0.4])
    np.testing.assert_allclose(summed["differential"], [0.2, 0.6])


def test_routing_block_figures_by_hand():
    """Two classes: class 0 with 2 valid descriptions of 3 (many), class 1 with 3 (few); two images each."""
    routing = np.array([[0.5, 0.5, 0.0],      # class 0: flat over its two valid descriptions
                        [1.0, 0.0, 0.0],      # class 0: all on one
                        [0.25, 0.25, 0.5],
                        [0.2, 0.3, 0.5]])
    labels, mask = np.array([0, 0, 1, 1]), np.array([[True, True, False], [True, True, True]])
    block = routing_summary(routing, labels, ["many", "few"], ["a", "b", "a"], mask)
    entropy_2 = 0.5 * math.log(4) + 0.5 * math.log(2)               # H of image 2, in nats
    entropy_3 = 0.2 * math.log(5) + 0.3 * math.log(1 / 0.3) + 0.5 * math.log(2)
    assert block["entropy"] == round((1 + 0 + entropy_2 / math.log(3) + entropy_3 / math.log(3)) / 4, 6)
    assert block["top_weight"] == 0.625
    assert block["effective_descriptions"] == round((2 + 1 + math.exp(entropy_2) + math.exp(entropy_3)) / 4, 6)
    assert block["dimensions"] == {"all": {"a": 0.7375, "b": 0.2625},     # a = slots 0 + 2
                                   "many": {"a": 0.75, "b": 0.25}, "few": {"a": 0.725, "b": 0.275}}
    # per class, the std over its images of a dimension's weight: class 0 a (0.5, 1) -> 0.25, class 1 (0.75, 0.7)
    # -> 0.025; b the same by symmetry; averaged over the classes
    assert block["image_std"] == {"a": 0.1375, "b": 0.1375, "mean": 0.1375}


def test_routing_block_of_uniform_weights_is_flat_and_image_independent():
    mask = np.ones((3, 4), bool)
    block = routing_summary(np.full((6, 4), 0.25), np.array([0, 0, 1, 1, 2, 2]), ["few"] * 3, list("wxyz"), mask)
    assert block["entropy"] == 1.0 and block["effective_descriptions"] == 4.0 and block["image_std"]["mean"] == 0


def test_table_prints_each_number_as_a_percentage_and_dashes_absent_groups():
    metrics = {"mdpr": {"top1": 0.5, "top5": 0.75, "mean_class": 0.25, "many": 1.0, "few": 0.125},
               "zero_shot": {"top1": 0.123456, "top5": 0.5, "mean_class": 0.0, "many": 0.0, "few": 0.5}}
    lines = format_table(metrics).splitlines()
    assert lines[0].split() == ["method", "top1", "top5", "mean_class", "many", "medium", "few"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["zero-shot", "CLIP", "12.35%", "50.00%", "0.00%", "0.00%", "-", "50.00%"]  # METHODS
    assert lines[3].split() == ["MDPR", "(fused)", "50.00%", "75.00%", "25.00%", "100.00%", "-", "12.50%"]
    assert len(lines) == 4


@pytest.mark.parametrize("chunk", [1, 3])
def test_scoring_class_by_class_keeps_argmax_ties_and_the_top5(monkeypatch, chunk):
    """Evaluation scores the classes in chunks (router.SIDE_CHUNK; here 1 and 3 of the 7 classes, as C = 8,142 is
    in chunks of 1,024): the predictions, top-5 hits and routing equal the hand computation over all classes at once,
    and a class tied with an earlier one (class 2 is a copy of class 0, same count) loses the tie, as in argmax (and
    at the 5th place of the top 5)."""
    from pipeline.model import router

    monkeypatch.setattr(router, "SIDE_CHUNK", chunk)
    rng = np.random.default_rng(3)
    class_feats, library = _unit(rng.normal(size=(7, 8))), _unit(rng.normal(size=(7, 3, 8)))
    class_feats[2], library[2] = class_feats[0], library[0]
    residual = rng.normal(size=(7, 8)).astype(np.float32)
    residual[2] = residual[0]
    feats = np.concatenate([class_feats[:1] + 0.01 * rng.normal(size=(4, 8)), rng.normal(size=(20, 8))]).astype(
        np.float32)  # 4 images near class 0 (and its copy, class 2), 20 anywhere
    labels = np.concatenate([[2, 2, 0, 0], rng.integers(0, 7, 20)])
    counts = [30, 9, 30, 4, 50, 2, 12]
    params = ModelParams(heads=2, dropout=0.0)
    model = MDPRModel(torch.from_numpy(class_feats), torch.from_numpy(library), None, params, seed=0)
    with torch.no_grad():
        model.residual.copy_(torch.from_numpy(residual))
    preds, routing, top5 = predict_methods(model, feats, labels, 0.3, 0.7, class_log_prior(counts), batch_size=6)
    logits, weights = scores_by_hand(feats[:, None], class_feats, library, np.ones((7, 3), bool), model.state_dict(),
                                     asdict(params), fusion_weight=0.3, posthoc_tau=0.7, train_counts=counts)
    for method in METHODS:
        np.testing.assert_array_equal(preds[method], logits[method].argmax(-1), err_msg=method)
        true = logits[method][np.arange(24), labels][:, None]
        ranks = (logits[method] > true).sum(-1) + ((logits[method] == true) & (np.arange(7) < labels[:, None])).sum(-1)
        np.testing.assert_array_equal(top5[method], ranks < 5, err_msg=method)
    assert (preds["base"][:4] == 0).all()  # the tie between class 0 and its copy goes to the lower index
    np.testing.assert_allclose(routing, weights[np.arange(24), labels], atol=1e-6)
