"""Pretrained-tag weights: read from the local Hugging Face cache without network, one line when absent and offline.

    .venv/bin/python -m pytest tests/unit/features/test_weights.py -q

A tag for the tiny architecture is added to open_clip's registry for the test (its weights in a temporary hub cache
laid out as huggingface_hub writes it), so the whole path runs: lookup, open_clip load, preprocessing. The load with
the hub online, in a fresh process, is tests/e2e/test_weights_online.py.
"""
import time

import numpy as np
import pytest
import torch

from pipeline.config.data_params import ClipParams
from pipeline.core.errors import UserError
from pipeline.features import weights
from pipeline.features.clip import load_encoder
from tests.helpers.hub_cache import REPO_ID, put_in_cache

TAG_MEAN, TAG_STD = (0.25, 0.5, 0.75), (0.2, 0.3, 0.4)


@pytest.fixture
def tiny_tag(monkeypatch, tmp_path):
    """mdpr-tiny gets a pretrained tag `fake` (hf_hub REPO_ID, its own mean/std); an empty hub cache; hub offline."""
    import huggingface_hub.constants
    from open_clip import pretrained

    from pipeline.features.clip import register_configs

    register_configs()
    monkeypatch.setitem(pretrained._PRETRAINED, "mdpr-tiny", {"fake": {
        "url": "", "hf_hub": f"{REPO_ID}/", "mean": TAG_MEAN, "std": TAG_STD, "interpolation": "bilinear"}})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # any request would now raise
    return tmp_path / "hub"


def test_cached_tag_weights_load_without_network_with_the_tags_preprocessing(tiny_tag):
    reference = load_encoder(ClipParams(seed=5), "cpu")
    put_in_cache(tiny_tag, reference.model.state_dict())
    loaded = load_encoder(ClipParams(pretrained="fake"), "cpu")
    images = torch.randn(2, 3, 32, 32)
    np.testing.assert_allclose(loaded.encode_image_batch(images), reference.encode_image_batch(images), atol=1e-6)
    assert loaded.identity["pretrained"] == "fake"
    assert loaded.identity["mean"] == "[0.25, 0.5, 0.75]" and loaded.identity["std"] == "[0.2, 0.3, 0.4]"
    normalize = loaded.preprocess.transforms[-1]
    assert tuple(normalize.mean) == TAG_MEAN and tuple(normalize.std) == TAG_STD


def test_absent_weights_with_the_hub_offline_fail_at_once_naming_the_way_out(tiny_tag):
    started = time.monotonic()
    with pytest.raises(UserError) as error:
        load_encoder(ClipParams(pretrained="fake"), "cpu")
    assert time.monotonic() - started < 2
    message = str(error.value)
    for fragment in ("clip.pretrained = 'fake' for mdpr-tiny", REPO_ID, f"cache {tiny_tag}", "HF_HUB_OFFLINE is set",
                     "HF_HUB_OFFLINE=1", "hf download", "local checkpoint file"):
        assert fragment in message


def test_the_lookup_tries_safetensors_first_as_open_clip_does():
    repo, names = weights.weight_files("ViT-B-32", "openai")
    assert repo == "timm/vit_base_patch32_clip_224.openai"
    assert names == ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]


def test_the_weights_finding_sees_the_cache_without_loading_and_names_the_fix_when_offline(tiny_tag):
    from pipeline.core.findings import MISSING, OK
    from pipeline.features.inputs import weights_finding

    absent = weights_finding(ClipParams(pretrained="fake"))
    assert absent.status == MISSING and "HF_HUB_OFFLINE is set" in absent.detail
    assert f"hf download {REPO_ID}" in absent.fix
    put_in_cache(tiny_tag, load_encoder(ClipParams(seed=5), "cpu").model.state_dict())
    cached = weights_finding(ClipParams(pretrained="fake"))
    assert cached.status == OK and str(tiny_tag) in cached.detail
    assert weights_finding(ClipParams(pretrained="elsewhere.pt")).status == MISSING
    assert weights_finding(ClipParams(pretrained="nonsense-tag")).status == MISSING
    assert weights_finding(ClipParams(model="ViT-Nope")).status == MISSING
    assert weights_finding(ClipParams()).status == OK  # random init: nothing to load
