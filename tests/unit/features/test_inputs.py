"""Encoder inputs before a run: a GPU where the params need one, the disk the image features will take.

    .venv/bin/python -m pytest tests/unit/features/test_inputs.py -q
(the weights finding is tested with the fake hub tag in test_weights.py)
"""
import torch

from pipeline.config.data_params import ClipParams, EmbedParams, RuntimeParams
from pipeline.core.findings import MISSING, NOTE, OK
from pipeline.features.clip import load_encoder
from pipeline.features.inputs import feature_bytes, gpu_finding


def test_fp16_without_a_gpu_is_missing_and_fp32_is_a_note():
    fp16 = gpu_finding(ClipParams(precision="fp16"), RuntimeParams())
    fp32 = gpu_finding(ClipParams(), RuntimeParams())
    if torch.cuda.is_available():
        assert fp16.status == fp32.status == OK
    else:
        assert fp16.status == MISSING and "clip.precision = fp16" in fp16.detail and "fp32" in fp16.fix
        assert fp32.status == NOTE


def test_feature_bytes_count_every_cached_view_at_its_dtype():
    dim = load_encoder(ClipParams(), "cpu").dim
    counts = {"train": 100, "val": 10, "test": 20}
    plain = feature_bytes(counts, ClipParams(), EmbedParams())
    assert plain == 130 * dim * (4 + 2 * 4)   # float32 chunks + images.h5 + its DVC cache copy
    half = feature_bytes(counts, ClipParams(), EmbedParams(store_dtype="float16"))
    assert half == 130 * dim * (4 + 2 * 2)
    views = feature_bytes(counts, ClipParams(), EmbedParams(train_views=2, test_views="five_crop"))
    assert views == (100 * 3 + 10 + 20 * 6) * dim * 12
