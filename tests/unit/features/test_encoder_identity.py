"""The encoder's cache identity comes from open_clip's configs, without building or loading weights."""
import json

import pytest

from pipeline.config.data_params import ClipParams
from pipeline.core.errors import UserError
from pipeline.features.clip import _pair, encoder_identity, load_encoder


def test_identity_from_configs_is_what_the_loaded_model_says():
    params = ClipParams(model="mdpr-tiny", pretrained="none", seed=3)
    identity, dim = encoder_identity(params)
    encoder = load_encoder(params, "cpu")
    preprocess = encoder.model.visual.preprocess_cfg
    assert encoder.identity == identity and dim == encoder.dim
    assert json.loads(identity["image_size"]) == list(_pair(encoder.model.visual.image_size))
    assert json.loads(identity["mean"]) == [round(float(v), 6) for v in preprocess["mean"]]
    assert identity["pretrained"] == "none(seed=3)"


def test_a_tag_takes_its_normalisation_from_open_clip_without_downloading():
    identity, dim = encoder_identity(ClipParams(model="ViT-B-16-SigLIP", pretrained="webli"))
    assert dim == 768 and json.loads(identity["mean"]) == [0.5, 0.5, 0.5] and identity["pretrained"] == "webli"
    with pytest.raises(UserError, match="not a tag of ViT-B-32"):
        encoder_identity(ClipParams(model="ViT-B-32", pretrained="openia"))
