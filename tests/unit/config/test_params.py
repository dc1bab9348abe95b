"""Strict params: unknown keys, wrong types and out-of-range values fail with one line naming section and key."""
import pytest

from pipeline.config.data_params import DatasetParams
from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
from pipeline.config.params import SECTIONS, load_params
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError
from tests.helpers.worlds import REPO


def test_repo_params_file_loads_every_section():
    for cls in SECTIONS.values():
        assert isinstance(load_params(REPO / "params.yaml", cls), cls)


@pytest.mark.parametrize("cls, values, fragment", [
    (TrainParams, {"learning_rate": 0.1}, "unknown key train.learning_rate"),
    (TrainParams, {"lr": "fast"}, "train.lr = 'fast' has the wrong type; expected a number"),
    (TrainParams, {"epochs": 2.5}, "train.epochs = 2.5 has the wrong type; expected an integer"),
    (TrainParams, {"lr": -0.001}, "train.lr = -0.001 is out of range"),
    (EvaluateParams, {"fusion_weight": 1.5},
     "evaluate.fusion_weight = 1.5 is out of range; allowed: a number in [0, 1]"),
    (EvaluateParams, {"fusion_weight": "fast"},
     "evaluate.fusion_weight = 'fast' has the wrong type; expected a number or auto"),
    (EvaluateParams, {"posthoc_tau": -1},
     "evaluate.posthoc_tau = -1.0 is out of range; allowed: a number >= 0 or auto"),
    (TrainParams, {"lr_min": 0.01}, "train.lr_min = 0.01 is out of range; allowed: a number in [0, train.lr]"),
    (TrainParams, {"sem_warmup": "cosine"}, "train.sem_warmup = 'cosine' is not allowed; choose one of: official"),
    (TrainParams, {"ka_temperature": 0}, "train.ka_temperature = 0.0 is out of range"),
    (DatasetParams, {"imbalance_factor": 0.5}, "dataset.imbalance_factor = 0.5 is out of range"),
    (DatasetParams, {"name": "mnist"}, "dataset.name = 'mnist' is not allowed; choose one of: synthetic-lt"),
    (ModelParams, {"heads": 0}, "model.heads = 0 is out of range"),
    (ModelParams, {"adapter": "yes"}, "model.adapter = 'yes' has the wrong type; expected true or false"),
])
def test_bad_values_name_section_and_key(cls, values, fragment):
    with pytest.raises(UserError) as err:
        from_dict(cls, values)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_section_and_missing_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("trian:\n  lr: 0.1\n")
    with pytest.raises(UserError, match="unknown section 'trian'"):
        load_params(path, TrainParams)
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "nope.yaml", TrainParams)


def test_int_is_accepted_for_float_and_bools_are_not_numbers():
    assert from_dict(TrainParams, {"lr": 1}).lr == 1.0
    with pytest.raises(UserError, match="wrong type"):
        from_dict(TrainParams, {"lr": True})


def test_auto_or_a_number_for_the_fusion_values():
    assert from_dict(EvaluateParams, {"fusion_weight": "auto", "posthoc_tau": "auto"}) == EvaluateParams("auto", "auto")
    assert from_dict(EvaluateParams, {"fusion_weight": 1, "posthoc_tau": 0.5}) == EvaluateParams(1.0, 0.5)
    assert isinstance(from_dict(EvaluateParams, {"fusion_weight": 1}).fusion_weight, float)
