"""Cached multi-view features: five-crop test views averaged at evaluation, augmented train views sampled per epoch."""
import numpy as np
import torch
from PIL import Image

from pipeline.core import paths
from pipeline.evaluation.methods import METHODS
from pipeline.features import store
from pipeline.features.views import ViewTransform
from pipeline.model.mdpr import MDPRModel
from stages import embed_images, evaluate, train
from tests.helpers.by_hand import assert_evaluation_matches, evaluate_by_hand
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


def test_five_crop_views_are_averaged_at_evaluation_and_run_from_cache(trained_project, trained_world):
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
    averaged = evaluate_by_hand(trained_project)  # every method's logits averaged over the 5 cached views
    assert_evaluation_matches(trained_project, averaged)
    single = evaluate_by_hand(trained_world)      # what scoring the single view gives: the views must matter here
    assert any(not np.array_equal(averaged["per_class"][m], single["per_class"][m]) for m in METHODS)
    with_views = paths.METRICS.read_bytes()
    # evaluation reads only cached features: it works without any image on disk
    for png in (trained_project / "artifacts" / "data" / "images").rglob("*.png"):
        png.unlink()
    evaluate.run()
    assert paths.METRICS.read_bytes() == with_views


def _views_drawn_by_training(inputs: np.ndarray) -> list[tuple[int, int]]:
    """Run the train stage and say which (image, view) of `inputs` (N, 1 + A, d) fed each training row, in order.

    A forward pre-hook on every MDPRModel call in training mode (validation runs in eval mode) records the batch;
    each row is found by its exact bytes among the cached views (training casts float32 rows, unchanged)."""
    where = {row.tobytes(): (image, view) for image, rows in enumerate(inputs) for view, row in enumerate(rows)}
    drawn = []

    def record(module, args):
        if isinstance(module, MDPRModel) and module.training:
            drawn.extend(where[row.tobytes()] for row in args[0].detach().float().numpy())

    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        train.run()
    finally:
        hook.remove()
    return drawn


def test_train_views_are_cached_and_drawn_by_training(trained_project, image_readers):
    write_params(trained_project, {"embed": {"train_views": 2}})
    embed_images.run()
    assert set(image_readers()) == {-1}                           # num_workers 0: the main process reads
    groups, _ = store.read_h5(paths.IMAGES_H5)
    features, views = groups["train"]["features"], groups["train"]["views"]
    assert views.shape == (len(groups["train"]["labels"]), 2, 64)
    assert not np.allclose(views[:, 0], features)
    np.testing.assert_allclose(np.linalg.norm(views, axis=-1), 1, atol=1e-5)
    first = paths.IMAGES_H5.read_bytes()
    write_params(trained_project, {"embed": {"train_views": 2}, "runtime": {"num_workers": 2, "batch_size": 16}})
    embed_images.run()
    assert set(image_readers()) == {0, 1}                         # two DataLoader workers read the images
    assert paths.IMAGES_H5.read_bytes() == first                  # augmentations do not depend on workers
    count = len(features)
    drawn = _views_drawn_by_training(np.concatenate([features[:, None], views], axis=1))
    epochs = [dict(drawn[k * count:(k + 1) * count]) for k in range(3)]     # per epoch: image -> view drawn
    assert len(drawn) == 3 * count and all(sorted(epoch) == list(range(count)) for epoch in epochs)
    for view in (0, 1, 2):                                        # the plain view and both augmentations, ~1/3 each
        assert all(count / 5 < list(epoch.values()).count(view) < count / 2 for epoch in epochs), view
    assert epochs[0] != epochs[1] != epochs[2]                    # drawn anew every epoch
    evaluate.run()
    assert_evaluation_matches(trained_project, evaluate_by_hand(trained_project))
