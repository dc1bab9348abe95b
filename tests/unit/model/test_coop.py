"""The CoOp base branch (model.base: coop): learnable context through the real frozen open_clip text encoder.

mdpr-tiny with random weights (clip.seed) stands in for a pretrained CLIP: the prompts, tokenizer and transformer are
open_clip's own.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.config.data_params import ClipParams
from pipeline.config.model_params import ModelParams, TrainParams
from pipeline.core.errors import UserError
from pipeline.features.clip import load_encoder
from pipeline.model.coop import CoOpPrompts, load_text_encoder
from pipeline.model.mdpr import MDPRModel
from pipeline.model.training import fit

CLIP = ClipParams(model="mdpr-tiny", pretrained="none", seed=0)
NAMES = ["dog", "sea turtle", "golden retriever", "x-ray machine", "cat"]
V = 3


@pytest.fixture(scope="module")
def text():
    return load_text_encoder(CLIP)


def coop_model(text, seed=0, chunk=128, **params) -> MDPRModel:
    model_params = ModelParams(heads=2, base="coop", **params)
    dim = text.projection.shape[1]
    gen = torch.Generator().manual_seed(1)
    class_feats = F.normalize(torch.randn(len(NAMES), dim, generator=gen), dim=-1)  # (C, d)
    library = F.normalize(torch.randn(len(NAMES), V, dim, generator=gen), dim=-1)  # (C, V, d)
    return MDPRModel(class_feats, library, None, model_params, seed=seed,
                     prompts=CoOpPrompts(text, NAMES, model_params, seed, chunk))


@pytest.mark.parametrize("chunk", [128, 2], ids=["one call", "length-sorted chunks of 2"])
def test_untrained_photo_context_gives_the_encoders_own_prompt_embeddings(text, chunk):
    model = coop_model(text, chunk=chunk, ctx_init="a photo of a", n_ctx=4)
    encoder = load_encoder(CLIP)
    with torch.no_grad():  # open_clip's own padded forward over "a photo of a {name}."
        expected = F.normalize(encoder.model.encode_text(encoder.tokenizer([f"a photo of a {n}." for n in NAMES])),
                               dim=-1)
        weights = model.class_weights()  # (C, d)
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-5)
    assert model.residual is None and set(dict(model.named_parameters())) >= {"prompts.ctx"}


def test_class_specific_context_starts_the_same_and_random_init_is_small_and_seeded(text):
    shared, specific = coop_model(text), coop_model(text, class_specific_ctx=True)
    assert specific.prompts.ctx.shape == (len(NAMES), 4, shared.prompts.ctx.shape[-1])
    with torch.no_grad():
        torch.testing.assert_close(specific.class_weights(), shared.class_weights())
    random_a, random_b = coop_model(text, ctx_init="", n_ctx=2), coop_model(text, ctx_init="", n_ctx=2)
    assert random_a.prompts.ctx.shape == (2, shared.prompts.ctx.shape[-1])
    assert 0.01 < random_a.prompts.ctx.std() < 0.03
    assert torch.equal(random_a.prompts.ctx, random_b.prompts.ctx)
    assert not torch.equal(random_a.prompts.ctx, coop_model(text, seed=1, ctx_init="", n_ctx=2).prompts.ctx)
    per_class = coop_model(text, ctx_init="", n_ctx=2, class_specific_ctx=True).prompts.ctx  # (C, 2, w)
    assert per_class.shape == (len(NAMES), 2, shared.prompts.ctx.shape[-1])
    assert not torch.equal(per_class[0], per_class[1])  # drawn per class


def test_ctx_init_with_another_token_count_than_n_ctx_is_one_clear_error(text):
    with pytest.raises(UserError, match=r"model.ctx_init = 'a photo of a' is 4 tokens but model.n_ctx = 16"):
        coop_model(text, n_ctx=16)


def test_one_training_step_changes_only_the_context_and_the_head(text):
    model = coop_model(text)
    encoder_before = {k: v.clone() for k, v in text.state_dict().items()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(not p.requires_grad for p in text.parameters())
    assert not {id(p) for p in text.parameters()} & {id(p) for p in model.parameters()}
    gen = torch.Generator().manual_seed(2)
    labels = torch.arange(len(NAMES)).repeat(4)  # (20,)
    feats = F.normalize(torch.randn(len(labels), model.class_feats.shape[1], generator=gen), dim=-1)
    params = TrainParams(epochs=1, batch_size=len(labels), lr=1e-2, lambda_sem=1.0)  # exactly one step
    fit(model, feats, labels, [4] * len(NAMES), params)
    after = model.state_dict()
    assert set(after) == set(before)
    assert {k for k in after if k.startswith("prompts.")} == {"prompts.ctx"}  # no encoder weight, no constant
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert "prompts.ctx" in changed and "logit_scale" in changed and any(k.startswith("router.") for k in changed)
    assert changed <= {k for k, _ in model.named_parameters()}  # buffers (class / library caches) unchanged
    for key, value in text.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key


def test_the_encoder_follows_the_model_across_devices_and_dtypes(text):
    model = coop_model(text)
    model.to(torch.float64)
    assert text.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float64
    assert model.prompts.ctx.dtype == torch.float64
    model.to(torch.float32)
    assert text.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float32


def test_a_residual_model_refuses_prompts_and_a_coop_model_needs_them(text):
    with pytest.raises(UserError, match="base 'coop' takes a prompt learner"):
        MDPRModel(torch.zeros(2, 4), torch.ones(2, 1, 4), None, ModelParams(heads=1, base="coop"))
    prompts = CoOpPrompts(text, NAMES[:2], ModelParams(base="coop"), 0)
    with pytest.raises(UserError, match="base 'residual' takes no prompt learner"):
        MDPRModel(torch.zeros(2, 4), torch.ones(2, 1, 4), None, ModelParams(heads=1), prompts=prompts)
