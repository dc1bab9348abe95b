"""One embedding space: imported class features are checked against the encoder that encodes the descriptions."""
import numpy as np
import pytest

from pipeline.config.data_params import ClipParams
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.features import store
from pipeline.features.space import Agreement, check_space, space_agreement
from stages import embed_classes, prepare
from tests.helpers.worlds import write_params


def unit_rows(rng, n, d=16):
    rows = rng.normal(size=(n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


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
