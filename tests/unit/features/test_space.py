"""One embedding space: imported class features are checked against the encoder that encodes the descriptions."""
import re

import numpy as np
import pytest
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from pipeline.config.data_params import ClipParams
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.features import store
from pipeline.features.space import Agreement, ZeroShotCheck, check_space, space_agreement, zero_shot_check
from stages import embed_classes, prepare
from tests.helpers.spaces import own_class_features, unit_rows, write_import_without_class_features
from tests.helpers.worlds import write_params


def test_same_space_agrees_and_unrelated_spaces_do_not():
    rng = np.random.default_rng(0)
    own = unit_rows(rng, 50)
    noisy = own + 0.1 * unit_rows(rng, 50)  # the same model with other prompt templates: close, not equal
    same = space_agreement(own, noisy / np.linalg.norm(noisy, axis=1, keepdims=True), [str(i) for i in range(50)])
    other = space_agreement(own, unit_rows(rng, 50), [str(i) for i in range(50)])
    assert same.ok and same.mean_cosine > 0.9 and same.top1 == 1.0
    assert not other.ok and abs(other.mean_cosine) < 0.2 and other.top1 < 0.2


def test_repeated_class_names_agree_with_either_copy():
    rng = np.random.default_rng(1)
    own = unit_rows(rng, 3)
    own[2] = own[1]  # ImageNet's two 'missile': the same name gives the same embedding
    agreement = space_agreement(own, own.copy(), ["tench", "missile", "missile"])
    assert agreement.top1 == 1.0


def test_the_refusal_names_both_models_with_user_facing_values(capsys):
    bad = Agreement(mean_cosine=0.03, top1=0.001)
    imported = {"path": "data/raw/feats.h5", "model": "ViT-B-32", "pretrained": "openai"}
    with pytest.raises(UserError) as err:
        check_space(bad, ClipParams(model="ViT-B-32", pretrained="none"), imported)
    message = str(err.value)
    assert "data/raw/feats.h5 (model: ViT-B-32, pretrained: openai)" in message
    assert "clip.model: ViT-B-32, clip.pretrained: none" in message and "seed=" not in message
    assert "mean cosine 0.03, top-1 agreement 0%" in message and "clip.space_check: warn" in message
    check_space(bad, ClipParams(pretrained="none", space_check="warn"), {"path": "f.npz"})
    warning = capsys.readouterr().err
    assert warning.startswith("warning: embed_classes:") and "no model/pretrained attributes" in warning


def _import_with_class_features(tmp_path, embedded_world, monkeypatch, clip):
    groups, _ = store.read_h5(embedded_world / paths.IMAGES_H5)
    text, _ = store.read_h5(embedded_world / paths.CLASSES_H5)  # class features of mdpr-tiny, clip.seed 0
    arrays = {f"{split}_{name}": groups[split][name] for split in ("train", "val", "test")
              for name in ("features", "labels")}
    np.savez(tmp_path / "feats.npz", class_names=np.array(list(text[""]["names"])),
             class_features=text[""]["features"], **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"},
                            "clip": clip})
    prepare.run()
    return text[""]["features"]


def test_class_features_from_another_encoder_are_refused_unless_overridden(tmp_path, embedded_world, monkeypatch,
                                                                           capsys):
    imported = _import_with_class_features(tmp_path, embedded_world, monkeypatch, {"seed": 1})  # another init
    with pytest.raises(UserError, match="feats.npz \\(no model/pretrained attributes\\) and clip.model: mdpr-tiny, "
                                        "clip.pretrained: none are not one embedding space"):
        embed_classes.run()
    assert not paths.CLASSES_H5.exists()
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"},
                            "clip": {"seed": 1, "space_check": "warn"}})
    embed_classes.run()
    assert "running anyway (clip.space_check: warn)" in capsys.readouterr().err
    np.testing.assert_allclose(store.read_h5(paths.CLASSES_H5)[0][""]["features"], imported, atol=1e-6)


def test_class_features_of_the_same_encoder_pass_and_the_agreement_is_printed(tmp_path, embedded_world,
                                                                              monkeypatch, capsys):
    _import_with_class_features(tmp_path, embedded_world, monkeypatch, {})
    embed_classes.run()
    assert "(imported; mean cosine 1.00, top-1 agreement 100% with mdpr-tiny)" in capsys.readouterr().out


# --- the sample first (imports with class features) -------------------------------------------------------------


def test_a_sample_decides_only_when_its_interval_lies_on_one_side_of_each_threshold():
    assert Agreement(0.03, 0.0, 64, 1000, 0.1).clear()           # unrelated: refused on the sample
    assert Agreement(0.95, 1.0, 64, 1000, 0.05).clear()          # same model: passes on the sample
    assert not Agreement(0.55, 0.55, 64, 1000, 0.1).clear()      # near the thresholds: all classes decide
    assert not Agreement(0.9, 0.6, 64, 1000, 0.05).clear()       # the agreement's interval straddles 50%
    assert Agreement(0.55, 0.55, 20, 20, 0.1).clear()            # every class was compared: nothing left to encode


def _import_many_classes(tmp_path, monkeypatch, class_features) -> list[str]:
    """A features import of 150 ImageNet class names with the given class features (random image features)."""
    names = list(IMAGENET_CLASSNAMES)[:150]
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(150), 2)
    arrays = {f"{split}_{key}": value for split in ("train", "val", "test")
              for key, value in (("features", unit_rows(rng, len(labels), 64)), ("labels", labels))}
    np.savez(tmp_path / "feats.npz", class_names=np.array(names), class_features=class_features, **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"}})
    prepare.run()
    return names


def count_prompts(monkeypatch) -> list[int]:
    """Texts through the encoder's text tower, per call (the real encoding still runs)."""
    from pipeline.features.clip import Encoder

    calls, encode = [], Encoder.encode_texts

    def counted(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return encode(self, texts, *args, **kwargs)
    monkeypatch.setattr(Encoder, "encode_texts", counted)
    return calls


def test_class_features_of_another_space_are_refused_after_encoding_a_sample_only(tmp_path, monkeypatch):
    _import_many_classes(tmp_path, monkeypatch, unit_rows(np.random.default_rng(5), 150, 64))
    prompts = count_prompts(monkeypatch)
    with pytest.raises(UserError, match="top-1 agreement 0% on a sample of 64 of 150 classes"):
        embed_classes.run()
    assert prompts == [64]  # TINY_PARAMS: simple templates, one prompt per class; 150 without the sample
    assert not paths.CLASSES_H5.exists()


def test_class_features_of_the_same_space_pass_on_the_sample_and_are_kept(tmp_path, monkeypatch, capsys):
    own = own_class_features(IMAGENET_CLASSNAMES[:150])
    _import_many_classes(tmp_path, monkeypatch, own)
    prompts = count_prompts(monkeypatch)
    embed_classes.run()
    assert prompts == [64]
    assert "top-1 agreement 100% on a sample of 64 of 150 classes" in capsys.readouterr().out
    stored, attrs = store.read_h5(paths.CLASSES_H5)
    np.testing.assert_allclose(stored[""]["features"], own, atol=1e-6)
    assert attrs["space_check"].startswith("passed: mean cosine 1.00")


def test_a_sample_near_the_thresholds_encodes_the_rest_and_all_classes_decide(tmp_path, monkeypatch, capsys):
    own = own_class_features(IMAGENET_CLASSNAMES[:150])
    half = own.copy()
    half[1::2] = unit_rows(np.random.default_rng(6), 75, 64)  # every other class from another space
    _import_many_classes(tmp_path, monkeypatch, half)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"},
                            "clip": {"space_check": "warn"}})
    prompts = count_prompts(monkeypatch)
    embed_classes.run()
    assert prompts == [64, 86]
    verdict = store.read_h5(paths.CLASSES_H5)[1]["space_check"]
    assert re.search(r"top-1 agreement \d+%; needs", verdict) or verdict.startswith("passed"), verdict
    assert "sample" not in verdict  # decided on all 150 classes


# --- zero-shot on the imported image features (imports without class features) -----------------------------------


def test_zero_shot_beats_chance_in_one_space_and_not_in_unrelated_ones():
    rng = np.random.default_rng(2)
    class_feats = unit_rows(rng, 20, 64)  # (C, d)
    labels = np.repeat(np.arange(20), 10)
    matched = zero_shot_check(unit_rows(rng, 200, 64) * 0.5 + class_feats[labels], labels, class_feats)
    unrelated = zero_shot_check(unit_rows(rng, 200, 64), labels, class_feats)
    assert matched.ok and matched.accuracy > 0.9
    assert not unrelated.ok and unrelated.accuracy < unrelated.needed
    assert abs(unrelated.chance - 0.05) < 0.01  # balanced labels: chance = 1/C whatever the predictions
    assert unrelated.needed == pytest.approx(unrelated.chance + 3 * np.sqrt(unrelated.chance * (1 -
                                                                                     unrelated.chance) / 200))


def test_chance_counts_a_text_tower_that_sends_every_image_to_the_head_class():
    """On a long-tailed split, predicting the head class for every image scores its share: that is chance, not a
    match (p0 = sum_c share_label(c) share_pred(c) = 0.9 here)."""
    rng = np.random.default_rng(3)
    class_feats = unit_rows(rng, 10, 64)
    labels = np.array([0] * 180 + [1, 2, 3, 4, 5, 6, 7, 8, 9] * 2 + [0, 0])  # 90% class 0
    collapsed = zero_shot_check(np.repeat(class_feats[:1], len(labels), 0), labels, class_feats)
    assert collapsed.accuracy == pytest.approx(0.91) and collapsed.chance == pytest.approx(0.91)
    assert not collapsed.ok


def test_the_margin_is_three_binomial_deviations_above_chance():
    at = ZeroShotCheck(accuracy=0.0, chance=0.01, n=2000)
    margin = 0.01 + 3 * np.sqrt(0.01 * 0.99 / 2000)  # 1.67%
    assert at.needed == pytest.approx(margin)
    assert not ZeroShotCheck(0.015, 0.01, 2000).ok      # the 1.5% against 1%: refused
    assert ZeroShotCheck(margin + 1e-4, 0.01, 2000).ok and not ZeroShotCheck(margin - 1e-4, 0.01, 2000).ok


def test_an_import_without_class_features_passes_when_the_text_encoder_classifies_its_images(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_import_without_class_features(tmp_path, text_seed=0)
    prepare.run()
    embed_classes.run()
    assert "zero-shot top-1 100.0% on 30 imported image features" in capsys.readouterr().out
    assert store.read_h5(paths.CLASSES_H5)[1]["space_check"].startswith("passed: zero-shot top-1")


def test_an_import_without_class_features_is_refused_at_chance_unless_warn(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_import_without_class_features(tmp_path, text_seed=1)  # image features of another text space
    prepare.run()
    with pytest.raises(UserError, match=r"the image features of feats.npz \(no model/pretrained attributes\) and "
                                        r"clip.model: mdpr-tiny, clip.pretrained: none are not one embedding space "
                                        r"\(zero-shot top-1 .* on 30 imported image features, chance .*; needs > "):
        embed_classes.run()
    assert not paths.CLASSES_H5.exists()
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"},
                            "clip": {"space_check": "warn"}})
    embed_classes.run()
    assert "warning: embed_classes: the image features of feats.npz" in capsys.readouterr().err
    assert store.read_h5(paths.CLASSES_H5)[1]["space_check"].startswith("failed: zero-shot top-1")
