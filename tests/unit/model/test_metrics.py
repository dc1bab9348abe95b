"""Long-tailed accuracy metrics: groups by training count, per-class means, absent groups."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.data.manifest import group_of, groups_of
from pipeline.model.metrics import accuracy_report, per_class_accuracy


@pytest.mark.parametrize("count,group", [(101, "many"), (100, "medium"), (20, "medium"), (19, "few"), (0, "few")])
def test_group_boundaries(count, group):
    assert group_of(count, 100, 20) == group


def test_other_thresholds_move_the_boundaries():
    assert groups_of([51, 50, 5, 4], 50, 5) == ["many", "medium", "medium", "few"]


def test_hand_computed_report():
    train_counts = [500, 150, 50, 30, 5]  # many, many, medium, medium, few
    labels = [0, 0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 4]
    pred = [0, 0, 0, 1, 1, 0, 2, 2, 0, 4, 0, 0]
    # per class: 3/4, 1/2, 2/2, 0/1, 1/3
    report = accuracy_report(torch.tensor(pred), torch.tensor(labels), groups_of(train_counts, 100, 20))
    assert report["top1"] == pytest.approx(7 / 12)
    assert report["mean_class"] == pytest.approx((0.75 + 0.5 + 1 + 0 + 1 / 3) / 5)
    assert report["many"] == pytest.approx((0.75 + 0.5) / 2)  # mean of per-class accuracies, not 4/6 pooled
    assert report["medium"] == pytest.approx((1 + 0) / 2)
    assert report["few"] == pytest.approx(1 / 3)


def test_empty_groups_are_absent_not_nan():
    report = accuracy_report(np.array([0, 1, 1]), np.array([0, 1, 0]), ["medium", "few"])
    assert set(report) == {"top1", "mean_class", "medium", "few"}
    assert all(not math.isnan(v) for v in report.values())


def test_classes_without_evaluation_images_are_left_out():
    # class 2 (the only many class) has no evaluation image: it is not counted as 0 and `many` is absent
    report = accuracy_report([0, 1], [0, 1], ["few", "medium", "many"])
    assert report["mean_class"] == 1.0 and "many" not in report
    per_class = per_class_accuracy(torch.tensor([0, 1]), torch.tensor([0, 0]), 3)
    assert per_class[0] == 0.5 and per_class[1:].isnan().all()


def test_counts_instead_of_groups_are_refused():
    with pytest.raises(ValueError, match="groups must name each class's group"):
        accuracy_report([0, 1], [0, 1], [500, 5])
