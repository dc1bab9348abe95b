"""The CLIP wrapper: tiny architecture, deterministic random init, local checkpoints, pretrained-tag errors."""
import numpy as np
import pytest
import torch

from pipeline.config.data_params import ClipParams
from pipeline.core.errors import UserError
from pipeline.features.clip import _needs_quick_gelu, class_prompts, load_encoder


def test_random_init_is_deterministic_and_normalised():
    first, second = load_encoder(ClipParams(), "cpu"), load_encoder(ClipParams(), "cpu")
    texts = ["a photo of a red circle.", "a photo of a blue square."]
    np.testing.assert_array_equal(first.encode_texts(texts, 8), second.encode_texts(texts, 8))
    np.testing.assert_allclose(np.linalg.norm(first.encode_texts(texts, 1), axis=1), 1, atol=1e-6)
    other = load_encoder(ClipParams(seed=1), "cpu")
    assert not np.allclose(first.encode_texts(texts, 8), other.encode_texts(texts, 8))
    assert first.identity["pretrained"] == "none(seed=0)" and first.dim == 64


def test_class_prompts_average_templates():
    encoder = load_encoder(ClipParams(), "cpu")
    prompts = class_prompts("red circle", "ensemble")
    assert len(prompts) == 7 and prompts[0] == "itap of a red circle."
    each = np.stack([encoder.encode_texts([prompt], 1)[0] for prompt in prompts])  # (7, d), one prompt at a time
    mean = each.mean(0)
    feats = encoder.encode_class_names(["red circle", "blue square"], "ensemble", 4)
    assert feats.shape == (2, 64)
    np.testing.assert_allclose(feats[0], mean / np.linalg.norm(mean), atol=1e-6)
    single = encoder.encode_class_names(["red circle"], "simple", 4)[0]
    np.testing.assert_allclose(single, encoder.encode_texts(["a photo of a red circle."], 1)[0], atol=1e-6)


def test_local_checkpoint_is_loaded_and_hashed(tmp_path, monkeypatch):
    reference = load_encoder(ClipParams(seed=3), "cpu")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/checkpoints").mkdir(parents=True)
    torch.save(reference.model.state_dict(), tmp_path / "data/checkpoints/tiny.pt")
    loaded = load_encoder(ClipParams(pretrained="data/checkpoints/tiny.pt"), "cpu")
    assert loaded.identity["pretrained"].startswith("sha256:")
    images = torch.randn(2, 3, 32, 32)
    np.testing.assert_allclose(loaded.encode_image_batch(images), reference.encode_image_batch(images), atol=1e-6)


def test_a_checkpoint_outside_data_checkpoints_is_refused_since_dvc_would_not_see_it_change(tmp_path, monkeypatch):
    torch.save(load_encoder(ClipParams(seed=3), "cpu").model.state_dict(), tmp_path / "tiny.pt")
    (tmp_path / "project/data/checkpoints").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project")
    with pytest.raises(UserError, match="lies outside data/checkpoints/, so DVC would not see the checkpoint change"):
        load_encoder(ClipParams(pretrained=str(tmp_path / "tiny.pt")), "cpu")
    with pytest.raises(UserError, match="lies outside data/checkpoints/"):
        load_encoder(ClipParams(pretrained="data/checkpoints/../../../tiny.pt"), "cpu")  # resolved, not read as text


def test_missing_checkpoint_and_unknown_names(tmp_path):
    with pytest.raises(UserError, match="checkpoint file not found"):
        load_encoder(ClipParams(pretrained=str(tmp_path / "missing.pt")), "cpu")
    with pytest.raises(UserError, match="not an open_clip architecture"):
        load_encoder(ClipParams(model="ViT-Z-99"), "cpu")
    with pytest.raises(UserError, match="is not a tag of ViT-B-32"):
        load_encoder(ClipParams(model="ViT-B-32", pretrained="nonsense"), "cpu")


def test_unreachable_weights_explain_what_to_do(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as on a machine without internet
    with pytest.raises(UserError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE is set.*local checkpoint"):
        load_encoder(ClipParams(model="ViT-B-32", pretrained="laion2b_s34b_b79k"), "cpu")


def test_openai_weights_get_quick_gelu():
    assert _needs_quick_gelu(ClipParams(model="ViT-B-16", pretrained="openai"))
    assert not _needs_quick_gelu(ClipParams(model="ViT-B-16", pretrained="laion2b_s34b_b88k"))
    assert not _needs_quick_gelu(ClipParams())


def test_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        load_encoder(ClipParams(), "cuda")
