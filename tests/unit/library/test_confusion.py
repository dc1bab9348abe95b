"""Zero-shot logits and the confusion report on a tiny 2-d problem worked out by hand; confusion.json read back."""
import json

import numpy as np
import pytest
import torch

from pipeline.core.errors import UserError
from pipeline.features.zeroshot import zero_shot_logits
from pipeline.library.confusion import confusion, read_contrasts

CLASS_FEATS = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])      # classes a, b, c
IMAGES = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6],             # class a: logits [100 0 60], [60 80 100], [80 60 96]
                   [0.0, 1.0], [-0.6, 0.8]])                       # class b: logits [0 100 80], [-60 80 28]
LABELS = np.array([0, 0, 0, 1, 1])                                 # class c has no image


def test_zero_shot_logits_are_100_times_the_cosine():
    expected = [[100, 0, 60], [60, 80, 100], [80, 60, 96], [0, 100, 80], [-60, 80, 28]]
    np.testing.assert_allclose(zero_shot_logits(IMAGES, CLASS_FEATS), expected, atol=1e-9)
    as_torch = zero_shot_logits(torch.tensor(IMAGES), torch.tensor(CLASS_FEATS))
    np.testing.assert_allclose(as_torch.numpy(), expected, atol=1e-9)


def test_confusion_counts_accuracies_and_ranking_by_hand():
    report = confusion(IMAGES, LABELS, CLASS_FEATS, ["a", "b", "c"], top_k=2)
    assert report["train_accuracy"] == 0.6 and report["top_k"] == 2       # a: 1 of 3 right, b: 2 of 2
    a, b, c = report["classes"]
    assert (a["n_train"], a["zero_shot_train_acc"]) == (3, round(1 / 3, 6))
    assert [(o["name"], o["count"]) for o in a["confused_with"]] == [("c", 2), ("b", 0)]
    assert a["confused_with"][0]["mean_prob"] == pytest.approx(2 / 3, abs=1e-6)   # ~1 on two images, ~0 on one
    # b is never mistaken: the tie at 0 goes to the class with more probability (c: e^-20 vs a: e^-100 on image 4)
    assert (b["n_train"], b["zero_shot_train_acc"]) == (2, 1.0)
    assert [(o["name"], o["count"]) for o in b["confused_with"]] == [("c", 0), ("a", 0)]
    # c has no image: zero probability everywhere, ties by index
    assert (c["n_train"], c["zero_shot_train_acc"]) == (0, 0.0)
    assert [(o["name"], o["count"], o["mean_prob"]) for o in c["confused_with"]] == [("a", 0, 0.0), ("b", 0, 0.0)]


def test_contrasts_read_back_from_confusion_json(tmp_path):
    path = tmp_path / "confusion.json"
    path.write_text(json.dumps(confusion(IMAGES, LABELS, CLASS_FEATS, ["a", "b", "c"], top_k=2)))
    assert read_contrasts(path, ["a", "b", "c"]) == ["c", "c", "a"]
    with pytest.raises(UserError, match="does not match classes.json at class 1 \\('x'\\)"):
        read_contrasts(path, ["a", "x", "c"])
    with pytest.raises(UserError, match="not found; run `mdpr confusion`"):
        read_contrasts(tmp_path / "missing.json", ["a"])
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="is not a confusion report"):
        read_contrasts(path, ["a"])
