"""`embed.decode: gpu`: the device view equals the CPU view up to resampling; fallbacks are said; the real GPU path."""
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams
from pipeline.features.clip import load_encoder
from pipeline.features.embed import EmbedJob, FileBytesRows
from pipeline.features.gpu_decode import DeviceJpegViews, collate_items, decode_plan, say_fallback
from pipeline.features.views import ViewTransform


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(ClipParams(model="mdpr-tiny"), "cpu")


@pytest.fixture
def files(tmp_path):
    """Three JPEGs of different sizes, a PNG, and a file with a JPEG header but garbage after it."""
    gen = np.random.default_rng(0)
    for name, size in (("a.jpg", (48, 40)), ("b.jpg", (32, 32)), ("c.jpg", (70, 50))):
        smooth = gen.integers(0, 255, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
        Image.fromarray(smooth).resize(size, Image.BILINEAR).save(tmp_path / name, quality=95)
    Image.fromarray(gen.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(tmp_path / "d.png")
    (tmp_path / "e.jpg").write_bytes(b"\xff\xd8" + b"not a jpeg" * 20)
    return tmp_path


def _items(files, transform, names):
    rows = FileBytesRows(names, files, transform, 0, len(names))
    return collate_items([rows[i] for i in range(len(names))])


def test_device_view_matches_the_cpu_view_up_to_resampling(encoder, files):
    transform = ViewTransform(encoder.preprocess, 32)
    names = ["a.jpg", "d.png", "b.jpg", "c.jpg"]
    items, errors = _items(files, transform, names)
    assert items[0].dim() == 1 and items[1].shape == (1, 3, 32, 32)  # JPEG bytes; the PNG already decoded
    views, errors = DeviceJpegViews(encoder.preprocess, 32, torch.device("cpu"), files)(items, errors, names)
    cpu = torch.stack([transform(Image.open(files / name).convert("RGB")) for name in names])  # (4, 1, 3, S, S)
    assert views.shape == cpu.shape and errors == [""] * 4
    torch.testing.assert_close(views[1], cpu[1])  # the PNG went through the CPU path unchanged
    assert (views - cpu).abs().mean() < 0.05  # same view; only resampling and JPEG-decoder rounding differ
    feats = encoder.encode_image_batch(views.flatten(0, 1))
    np.testing.assert_allclose((feats * encoder.encode_image_batch(cpu.flatten(0, 1))).sum(1), 1, atol=2e-3)


def test_undecodable_jpeg_is_an_error_of_its_row_only(encoder, files):
    transform = ViewTransform(encoder.preprocess, 32)
    names = ["a.jpg", "e.jpg", "b.jpg"]
    items, errors = _items(files, transform, names)
    views, errors = DeviceJpegViews(encoder.preprocess, 32, torch.device("cpu"), files)(items, errors, names)
    assert views.shape == (2, 1, 3, 32, 32)
    assert errors[0] == errors[2] == "" and errors[1].startswith("e.jpg: ")


def test_gpu_decode_falls_back_to_the_cpu_and_says_why(encoder, files, capsys):
    plain, five = ViewTransform(encoder.preprocess, 32), ViewTransform(encoder.preprocess, 32, "five_crop")
    folder = DatasetParams(name="folder", root=str(files))
    assert decode_plan(EmbedParams(), folder, torch.device("cuda"), plain) == (None, None)  # decode: cpu
    gpu = EmbedParams(decode="gpu")
    assert decode_plan(gpu, folder, torch.device("cpu"), plain)[1] == "no CUDA GPU is in use (device cpu)"
    assert "extra cached views" in decode_plan(gpu, folder, torch.device("cuda"), five)[1]
    assert "no image files" in decode_plan(gpu, DatasetParams(name="cifar10-lt"), torch.device("cuda"), plain)[1]
    say_fallback(decode_plan(gpu, folder, torch.device("cpu"), plain)[1])
    assert capsys.readouterr().err == ("embed_images: embed.decode is gpu but no CUDA GPU is in use (device cpu); "
                                       "decoding on the CPU.\n")


def test_embed_job_with_device_decoding_saves_the_same_chunks_layout(encoder, files, tmp_path):
    names = ["a.jpg", "b.jpg", "d.png", "c.jpg"]
    transform = ViewTransform(encoder.preprocess, 32)
    decode = DeviceJpegViews(encoder.preprocess, 32, torch.device("cpu"), files)  # the GPU path, run on the CPU
    feats = {}
    for name, decoder in (("cpu", None), ("device", decode)):
        job = EmbedJob(names, lambda i: Image.open(files / i).convert("RGB"), encoder, transform, tmp_path / name, 3,
                       progress=False, decode=decoder)
        job.run()
        feats[name] = np.concatenate([chunk for _start, chunk, _errors in job.chunks()])  # (4, 1, d)
    np.testing.assert_allclose((feats["cpu"] * feats["device"]).sum(-1), 1, atol=2e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_jpegs_decoded_on_the_gpu_give_the_cpu_features(files):
    encoder = load_encoder(ClipParams(model="mdpr-tiny"), "cuda")
    names = ["a.jpg", "d.png", "b.jpg", "c.jpg"]
    transform = ViewTransform(encoder.preprocess, 32)
    items, errors = _items(files, transform, names)
    views, errors = DeviceJpegViews(encoder.preprocess, 32, torch.device("cuda"), files)(items, errors, names)
    assert views.is_cuda and errors == [""] * 4
    cpu = torch.stack([transform(Image.open(files / name).convert("RGB")) for name in names])
    feats, reference = (encoder.encode_image_batch(v.flatten(0, 1)) for v in (views, cpu))
    np.testing.assert_allclose((feats * reference).sum(1), 1, atol=2e-3)
