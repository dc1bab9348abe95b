"""`model.base: coop` through the real train and evaluate stages and `mdpr predict` on the tiny world."""
from __future__ import annotations

import json

import pytest
import torch

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams
from pipeline.config.params import load_params
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.evaluation import predict
from pipeline.evaluation.methods import METHODS
from pipeline.features.caches import load_features
from pipeline.model.checkpoint import kept_fusion, load_checkpoint, load_trained_model
from pipeline.model.losses import class_log_prior
from pipeline.model.mdpr import fuse
from stages import evaluate, train
from tests.helpers.worlds import write_params

COOP = {"model": {"heads": 4, "base": "coop"}, "train": {"epochs": 2, "batch_size": 32}}


@pytest.fixture
def coop_project(trained_project):
    """The trained tiny world retrained and evaluated with the coop base branch."""
    write_params(trained_project, COOP)
    train.run()
    evaluate.run()
    return trained_project


def test_coop_trains_evaluates_every_method_and_saves_only_context_and_head(coop_project):
    metrics = json.loads(paths.METRICS.read_text())
    assert set(METHODS) <= set(metrics)
    state = torch.load(paths.CHECKPOINT, weights_only=True)["state_dict"]
    assert "prompts.ctx" in state and "residual" not in state
    assert not any("transformer" in key or "token_embedding" in key for key in state)  # no encoder weights
    feats = load_features(with_images=False)
    checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
    model = load_trained_model(feats, checkpoint, load_params("params.yaml", ClipParams))
    torch.testing.assert_close(model.prompts.ctx, state["prompts.ctx"])


def test_coop_model_refuses_clip_params_of_another_encoder(coop_project):
    params = json.loads(json.dumps(COOP))
    write_params(coop_project, {**params, "clip": {"seed": 1}})  # other random weights: another CLIP
    with pytest.raises(UserError, match=r"model.pt was made with clip pretrained = 'none\(seed=0\)'.*'none\(seed=1\)'"):
        evaluate.run()


def test_predict_with_a_coop_model_agrees_with_evaluate(coop_project):
    clip, evaluate_params = load_params("params.yaml", ClipParams), load_params("params.yaml", EvaluateParams)
    predictor = predict.load_predictor(clip, evaluate_params, load_params("params.yaml", RuntimeParams))
    feats = load_features()
    test = feats.splits["test"]
    images = [paths.ARTIFACTS / "data" / "images" / name for name in test["ids"][:4]]
    results, _ = predict.predict(predictor, images, top_k=len(feats.classes["names"]))
    checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
    model = load_trained_model(feats, checkpoint, clip)
    with torch.no_grad():  # the probabilities are the softmax of the fused logits of the coop model
        out = model(torch.from_numpy(test["features"][:4]))
        log_prior = class_log_prior(feats.classes["train_counts"])
        expected = fuse(out["base"], out["sem"], *kept_fusion(checkpoint, evaluate_params), log_prior).softmax(-1)
    for result, row in zip(results, expected):
        got = torch.zeros(len(row))
        got[[c for c, _name, _p in result.top_k]] = torch.tensor([p for _c, _name, p in result.top_k])
        torch.testing.assert_close(got, row, rtol=0, atol=1e-4)
