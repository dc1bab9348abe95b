"""Trimmed text encoding equals open_clip's padded encode_text on real text towers (mdpr-tiny, ViT-B-32 random init)."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.config.data_params import ClipParams
from pipeline.features.clip import load_encoder
from pipeline.features.text import encode_embeddings, encode_texts, end_positions, text_tower

TEXTS = ["tiger: a large cat with orange fur, black vertical stripes, a white belly and a long striped tail.",
         "a photo of a dog.",
         "x",
         "goldfish: a small orange fish with a forked tail, shown in a round glass bowl of clear water.",
         " ".join(["a very long description that runs past the context"] * 12),  # truncated at 77 tokens
         "a close-up photo of a red circle.",
         "bald eagle: dark brown body, white head and tail, hooked yellow beak, seen perched on a pine branch"]


@pytest.fixture(scope="module", params=["mdpr-tiny", "ViT-B-32"])
def encoder(request):
    return load_encoder(ClipParams(model=request.param), "cpu")


def _padded(encoder, texts):
    with torch.no_grad():
        return F.normalize(encoder.model.encode_text(encoder.tokenizer(texts)), dim=-1).numpy()


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_trimmed_encoding_equals_padded(encoder, batch_size):
    trimmed = encode_texts(encoder.model, encoder.tokenizer, TEXTS, batch_size, "cpu")
    assert trimmed.shape == (len(TEXTS), encoder.dim) and trimmed.dtype == np.float32
    np.testing.assert_allclose(trimmed, _padded(encoder, TEXTS), atol=1e-6, rtol=0)
    np.testing.assert_allclose(encoder.encode_texts(TEXTS, batch_size), trimmed, atol=0, rtol=0)


def test_each_batch_runs_only_up_to_its_longest_prompt(encoder):
    tower = text_tower(encoder.model)
    ends = end_positions(tower, encoder.tokenizer(TEXTS))  # (N,)
    seen = []
    hook = tower.transformer.register_forward_hook(lambda module, args, out: seen.append(out.shape[1]))
    try:
        encode_texts(encoder.model, encoder.tokenizer, TEXTS, 2, "cpu")
    finally:
        hook.remove()
    longest_first = ends.sort(descending=True).values
    assert seen == [int(longest_first[i]) + 1 for i in range(0, len(TEXTS), 2)]
    assert seen[0] == 77 and seen[-1] < 10


def test_gradients_through_trimmed_embeddings_equal_padded(encoder):
    """A prompt learner (CoOp) feeds learnable token embeddings: same features and gradients as the padded pass
    (float64, so that float32 rounding of two different reduction orders does not hide a real difference)."""
    model = copy.deepcopy(encoder.model).double()
    tower = text_tower(model)
    tokens = encoder.tokenizer(TEXTS[:3])  # (3, 77): a long, a short and a one-token text
    ends = end_positions(tower, tokens)
    start = model.token_embedding(tokens).detach()  # (3, 77, w)
    upstream = torch.randn(len(tokens), encoder.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grads, feats = [], []
    for trimmed in (True, False):
        embeds = start.clone().requires_grad_(True)
        if trimmed:
            out = encode_embeddings(tower, embeds, ends)
        else:  # open_clip's own padded encode_text, with its token embedding replaced by `embeds`
            hook = model.token_embedding.register_forward_hook(lambda module, args, out, new=embeds: new)
            try:
                out = model.encode_text(tokens)
            finally:
                hook.remove()
        (out * upstream).sum().backward()
        grads.append(embeds.grad)
        feats.append(out.detach())
    torch.testing.assert_close(feats[0], feats[1], atol=1e-10, rtol=0)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=0)
    assert grads[0].abs().sum() > 0
    after_end = torch.arange(77)[None, :] > ends[:, None]  # (3, 77): positions past each end-of-text token
    assert (grads[1][after_end] == 0).all()  # nothing after end-of-text reaches the feature (why trimming is exact)


def test_towers_without_causal_mask_fall_back_to_padded():
    encoder = load_encoder(ClipParams(model="mdpr-tiny", seed=2), "cpu")
    encoder.model.attn_mask = None  # bidirectional attention: padding changes the feature, trimming would be wrong
    assert text_tower(encoder.model) is None
    np.testing.assert_allclose(encode_texts(encoder.model, encoder.tokenizer, TEXTS, 3, "cpu"),
                               _padded(encoder, TEXTS), atol=1e-6, rtol=0)
