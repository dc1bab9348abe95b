"""Cached multi-view features: five-crop test views averaged at evaluation, augmented train views sampled per epoch."""
import json

import numpy as np
from PIL import Image

from pipeline.core import paths
from pipeline.features import store
from pipeline.features.views import ViewTransform
from stages import embed_images, evaluate, train
from tests.helpers.worlds import write_params


def test_view_transform_shapes_and_determinism():
    from pipeline.config.data_params import ClipParams
    from pipeline.features.clip import load_encoder

    preprocess = load_encoder(ClipParams(), "cpu").preprocess
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8))
    assert ViewTransform(preprocess, 32, "five_crop")(image).shape == (6, 3, 32, 32)
    augment = ViewTransform(preprocess, 32, "augment:3")
    first = augment(image, seed=(0, 7))
    assert first.shape == (4, 3, 32, 32)
    assert np.array_equal(first.numpy(), augment(image, seed=(0, 7)).numpy())
    assert not np.array_equal(first.numpy(), augment(image, seed=(0, 8)).numpy())
    assert not np.array_equal(first[1].numpy(), first[2].numpy())


def test_five_crop_views_change_evaluation_and_run_from_cache(trained_project, trained_world):
    write_params(trained_project, {"embed": {"test_views": "five_crop"}})
    embed_images.run()
    groups, attrs = store.read_h5(paths.IMAGES_H5)
    test = groups["test"]
    assert test["views"].shape == (len(test["labels"]), 5, 64) and attrs["test_views"] == "five_crop"
    plain, _ = store.read_h5(trained_world / paths.IMAGES_H5)
    np.testing.assert_array_equal(test["features"], plain["test"]["features"])   # the single view is unchanged
    assert "views" not in groups["train"]
    train.run()                                   # train features unchanged, but the file hash moved: retrain
    evaluate.run()
    with_views = json.loads(paths.METRICS.read_text())
    single = json.loads((trained_world / paths.METRICS).read_text())
    assert with_views["zero_shot"] != single["zero_shot"] or with_views["mdpr"] != single["mdpr"]
    # evaluation reads only cached features: it works without any image on disk
    for png in (trained_project / "artifacts" / "data" / "images").rglob("*.png"):
        png.unlink()
    evaluate.run()
    assert json.loads(paths.METRICS.read_text()) == with_views


def test_train_views_are_cached_and_used(trained_project):
    write_params(trained_project, {"embed": {"train_views": 2}})
    embed_images.run()
    groups, _ = store.read_h5(paths.IMAGES_H5)
    views = groups["train"]["views"]
    assert views.shape == (len(groups["train"]["labels"]), 2, 64)
    assert not np.allclose(views[:, 0], groups["train"]["features"])
    np.testing.assert_allclose(np.linalg.norm(views, axis=-1), 1, atol=1e-5)
    first = paths.IMAGES_H5.read_bytes()
    write_params(trained_project, {"embed": {"train_views": 2}, "runtime": {"num_workers": 2, "batch_size": 16}})
    embed_images.run()
    assert paths.IMAGES_H5.read_bytes() == first                  # augmentations do not depend on workers
    train.run()
    evaluate.run()
    assert set(json.loads(paths.METRICS.read_text())) >= {"base", "mdpr"}
