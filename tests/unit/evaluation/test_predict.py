"""`mdpr predict` on the trained tiny world: output formats, agreement with the evaluate stage, and refusals."""
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams, ModelParams
from pipeline.config.params import load_params
from pipeline.config.schema import from_dict
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data.images import collect_images
from pipeline.evaluation import predict
from pipeline.evaluation.methods import predict_methods
from pipeline.features.caches import load_features
from pipeline.model.checkpoint import build_model, load_checkpoint
from stages.cli import main
from tests.helpers.by_hand import evaluate_by_hand, probabilities_by_hand
from tests.helpers.worlds import copy_world, inside, write_params

TEST_IMAGES = paths.ARTIFACTS / "data" / "images" / "test"
TUNED = EvaluateParams(fusion_weight=0.3, posthoc_tau=1.0)


def invoke(*args: str):
    return CliRunner().invoke(main, ["predict", *args], catch_exceptions=False)


def library_records() -> list[dict]:
    return [json.loads(line) for line in paths.LIBRARY.read_text().splitlines()]


def check_description(top_class: int, dimension: str, text: str) -> None:
    """The shown text is one of the top class's library descriptions, of the dimension it is shown under."""
    own = [r for r in library_records() if r["class_index"] == top_class and r["dimension"] == dimension]
    assert own and any(text.endswith(r["text"]) for r in own), (top_class, dimension, text)


@pytest.fixture(scope="module")
def tuned_world(trained_world, tmp_path_factory):
    """The trained world retrained with a non-default fusion weight and post-hoc adjustment (read-only use)."""
    from stages import train

    world = copy_world(trained_world, tmp_path_factory.mktemp("tuned") / "project")
    write_params(world, {"evaluate": {"fusion_weight": TUNED.fusion_weight, "posthoc_tau": TUNED.posthoc_tau}})
    with inside(world):
        train.run()
    return world


@pytest.fixture(scope="module")
def tuned_predictor(tuned_world):
    """A Predictor with a non-default fusion weight and post-hoc adjustment (loaded once)."""
    with inside(tuned_world):
        yield predict.load_predictor(load_params("params.yaml", ClipParams), TUNED,
                                     load_params("params.yaml", RuntimeParams))


def test_text_output_ranks_classes_and_explains_each_one(trained_project):
    result = invoke(str(TEST_IMAGES / "00_0000.png"), "--top-k", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(TEST_IMAGES / "00_0000.png") and len(lines) == 10
    ranked = [re.fullmatch(r"  (\d)\. (.+?)\s+(\d\.\d{4})", line) for line in lines[1::3]]
    assert [int(m[1]) for m in ranked] == [1, 2, 3]
    names = json.loads(paths.CLASSES.read_text())["names"]
    expected = probabilities_by_hand(evaluate_by_hand(trained_project), "test/00_0000.png")   # (C,)
    best = np.argsort(-expected)[:3]
    assert [m[2] for m in ranked] == [names[c] for c in best]
    np.testing.assert_allclose([float(m[3]) for m in ranked], expected[best], atol=2e-4)   # 4 decimals printed
    for index, routing_line, top_line in zip(best, lines[2::3], lines[3::3]):
        routing = dict(re.findall(r"(\w+) (\d\.\d{3})", routing_line.split(": ", 1)[1].split(" (entropy")[0]))
        assert list(routing) == list(dict.fromkeys(r["dimension"] for r in library_records()))
        assert sum(map(float, routing.values())) == pytest.approx(1.0, abs=0.003)
        entropy = float(re.search(r"\(entropy (\d\.\d{3})\)$", routing_line)[1])
        if entropy > predict.FLAT_ENTROPY:
            assert top_line == f"     flat: no description stands out (entropy > {predict.FLAT_ENTROPY})"
        else:
            shown = re.fullmatch(r"     top description \[(\w+), (\d\.\d{3})\]: (.+)", top_line)
            check_description(index, shown[1], shown[3])


def _prediction(weights: list[float]) -> predict.Prediction:
    dims = ["appearance", "context", "appearance"]
    routing = {"appearance": weights[0] + weights[2], "context": weights[1]}
    entropy = -sum(w * np.log(w) for w in weights if w > 0) / np.log(3)
    best = int(np.argmax(weights))
    explanation = predict.Explanation(routing, predict.Description(dims[best], f"text {best}", weights[best]), entropy)
    return predict.Prediction("cat.png", [(0, "cat", 0.9)], [explanation])


def test_explanations_say_flat_above_the_entropy_threshold_and_name_a_description_below():
    flat, routed = _prediction([0.36, 0.32, 0.32]), _prediction([0.8, 0.1, 0.1])
    assert flat.explanations[0].entropy > predict.FLAT_ENTROPY > routed.explanations[0].entropy
    assert flat.explanations[0].flat and not routed.explanations[0].flat
    assert format_lines(flat)[-1] == f"     flat: no description stands out (entropy > {predict.FLAT_ENTROPY})"
    assert format_lines(routed)[-1] == "     top description [appearance, 0.800]: text 0"
    assert format_lines(routed)[-2] == "     routing: appearance 0.900, context 0.100 (entropy 0.582)"
    record = predict.as_record(flat)
    assert record["flat"] is True and record["top_k"][0]["flat"] is True and record["entropy"] == 0.998562


def format_lines(result) -> list[str]:
    return predict.format_text(result).splitlines()


def test_json_for_a_folder_agrees_with_the_evaluate_stage(trained_project):
    result = invoke(str(TEST_IMAGES), "--json", "--top-k", "4")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    classes = json.loads(paths.CLASSES.read_text())
    assert len(records) == len(list(TEST_IMAGES.glob("*.png"))) == 5 * len(classes["names"])
    by_hand = evaluate_by_hand(trained_project)
    for record in records:
        expected = probabilities_by_hand(by_hand, str(Path(record["path"]).relative_to(TEST_IMAGES.parent)))
        best = np.argsort(-expected)[:4]
        assert [e["index"] for e in record["top_k"]] == best.tolist()
        np.testing.assert_allclose([e["prob"] for e in record["top_k"]], expected[best], atol=1e-4)
        assert all(classes["names"][e["index"]] == e["class"] for e in record["top_k"])
        assert sum(record["routing"].values()) == pytest.approx(1.0, abs=1e-4)
        assert record["dominant_dimension"] == max(record["routing"], key=record["routing"].get)
        check_description(record["top_k"][0]["index"], record["description"]["dimension"],
                          record["description"]["text"])
    # Per-class top-1 accuracy of these predictions is the `mdpr` column the evaluate stage wrote.
    correct = np.zeros(len(classes["names"]))
    for record in records:
        label = int(record["path"].split("/")[-1][:2])  # synthetic test files are named <label>_<k>.png
        correct[label] += record["top_k"][0]["index"] == label
    with open(paths.PER_CLASS) as handle:
        evaluated = [float(row["mdpr"]) for row in csv.DictReader(handle)]
    np.testing.assert_allclose(correct / 5, evaluated, atol=1e-6)


def test_probabilities_match_evaluation_on_cached_features(tuned_predictor, tuned_world):
    """Re-encoding the test files gives the cached features' fused prediction, with fusion weight and tau applied."""
    with inside(tuned_world):
        feats = load_features()
        checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
        model = build_model(feats, from_dict(ModelParams, checkpoint["model"]))
        model.load_state_dict(checkpoint["state_dict"])
        test = feats.splits["test"]
        images = [paths.ARTIFACTS / "data" / "images" / i for i in test["ids"]]
        results, skipped = predict.predict(tuned_predictor, images, top_k=6)
    preds, _, _ = predict_methods(model, test["features"], test["labels"], 0.3, 1.0, tuned_predictor.log_prior)
    assert not skipped and [r.top_k[0][0] for r in results] == preds["mdpr"].tolist()
    cached = predict.score(tuned_predictor, torch.from_numpy(test["features"])[:, None], list(test["ids"]), top_k=6)
    for fresh, stored in zip(results, cached):
        assert [c for c, _n, _p in fresh.top_k] == [c for c, _n, _p in stored.top_k]
        np.testing.assert_allclose([p for *_, p in fresh.top_k], [p for *_, p in stored.top_k], atol=1e-4)
        assert sum(p for *_, p in fresh.top_k) == pytest.approx(1.0, abs=1e-5)  # top-6 of 6 classes


def test_csv_out_skips_unreadable_images_when_asked(trained_project):
    folder = trained_project / "incoming"
    (folder / "nested").mkdir(parents=True)
    for name in ("00_0000.png", "03_0001.png"):
        (folder / "nested" / name).write_bytes((TEST_IMAGES / name).read_bytes())
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    result = invoke("incoming", "--out", "preds.csv", "--skip-unreadable", "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "skipped: incoming/broken.png: UnidentifiedImageError" in result.stderr
    assert result.stdout.strip() == "predict: 2 image(s) -> preds.csv, 1 skipped"
    with open("preds.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == ["incoming/nested/00_0000.png", "incoming/nested/03_0001.png"]
    for row in rows:
        top_k = [entry.rsplit(":", 1) for entry in row["top_k"].split(";")]
        assert len(top_k) == 2 and top_k[0] == [row["top1_class"], f"{float(row['top1_prob']):.6f}"]
        check_description(int(row["top1_index"]), row["description_dimension"], row["description"])
        weights = {k[len("routing_"):]: float(v) for k, v in row.items() if k.startswith("routing_")}
        assert len(weights) == 5 and max(weights, key=weights.get) == row["dominant_dimension"]
        assert row["flat"] == str(float(row["entropy"]) > predict.FLAT_ENTROPY)  # the top class's explanation
    assert sorted(p.name for p in trained_project.iterdir() if p.name.startswith(".preds")) == []


def test_another_encoder_is_refused(trained_project):
    write_params(trained_project, {"clip": {"seed": 1}})
    result = invoke(str(TEST_IMAGES / "00_0000.png"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: model/encoder mismatch: artifacts/features/images.h5 was made with clip "
                                    "pretrained: none, clip.seed: 0, but the clip params give pretrained: none, "
                                    "clip.seed: 1;")


def test_missing_input_and_edited_library_are_refused(trained_project):
    with pytest.raises(UserError, match="nowhere.png is not a file or folder"):
        collect_images(["nowhere.png"])
    with pytest.raises(UserError, match="no image"):
        collect_images([str(paths.MODEL_DIR)])
    lines = paths.LIBRARY.read_text().splitlines()
    record = json.loads(lines[0])
    record["text"] = "an edited description that library.h5 never saw"
    paths.LIBRARY.write_text("\n".join([json.dumps(record)] + lines[1:]) + "\n")
    with pytest.raises(UserError, match="library.jsonl changed since .*library.h5 was made"):
        predict.load_predictor(load_params("params.yaml", ClipParams), EvaluateParams(),
                               load_params("params.yaml", RuntimeParams))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_predictions(tuned_predictor, tuned_world):
    images = sorted((tuned_world / TEST_IMAGES).glob("*.png"))[:12]
    with inside(tuned_world):
        on_gpu = predict.load_predictor(load_params("params.yaml", ClipParams), TUNED,
                                        RuntimeParams(device="cuda", batch_size=8, num_workers=0))
        gpu_results, _ = predict.predict(on_gpu, images, top_k=3)
        cpu_results, _ = predict.predict(tuned_predictor, images, top_k=3)
    assert [r.top_k[0][0] for r in gpu_results] == [r.top_k[0][0] for r in cpu_results]
    np.testing.assert_allclose([[p for *_, p in r.top_k] for r in gpu_results],
                               [[p for *_, p in r.top_k] for r in cpu_results], atol=1e-3)


def test_predict_uses_the_kept_fusion_and_refuses_evaluate_params_changed_since_training(tuned_predictor,
                                                                                          trained_world):
    assert tuned_predictor.fusion == (TUNED.fusion_weight, TUNED.posthoc_tau)
    with inside(trained_world), pytest.raises(UserError, match="kept its epoch for evaluate params"):
        predict.load_predictor(load_params("params.yaml", ClipParams), TUNED, load_params("params.yaml", RuntimeParams))
