"""`mdpr preset`: every preset is valid, touches only its keys, and `demo` restores params.yaml byte for byte.

    .venv/bin/python -m pytest tests/unit/config/test_presets.py -q
"""
import pytest
import yaml

from pipeline.config import presets
from pipeline.config.params import SECTIONS, defaults
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError
from tests.helpers.worlds import REPO, TINY_PARAMS, run_mdpr, write_params

REAL_PRESETS = sorted(presets.preset_paths())
LLM_PRESETS = [name for name in REAL_PRESETS if name.startswith("llm-")]
DATASET_PRESETS = [name for name in REAL_PRESETS if name != "reference" and name not in LLM_PRESETS]
# The local LLM servers' OpenAI-compatible endpoints, as their documentation gives them.
LLM_SERVERS = {"llm-ollama": "http://localhost:11434/v1", "llm-vllm": "http://127.0.0.1:8000/v1",
               "llm-llama-cpp": "http://127.0.0.1:8080/v1"}
# Training settings the project's defaults share with the official MDPR code; the dataset presets inherit them.
REFERENCE = {"train": {"lr": 0.001, "weight_decay": 0.0001, "epochs": 20, "batch_size": 128, "lambda_sem": 0.1},
             "model": {"heads": 8, "dropout": 0.2}}
# Every choice of the official code (Sha843/MDPR, "MDPR with Maple": main_maple.py's defaults, loss.py,
# module_maple.py), as the params spell it.
OFFICIAL = {
    "model": {"heads": 8, "dropout": 0.2, "adapter": False, "logit_scale": 100.0, "router_init": "pytorch"},
    "train": {"epochs": 20, "lr": 0.001, "lr_schedule": "per_epoch", "lr_min": 1e-6, "weight_decay": 0.0001,
              "batch_size": 128, "base_loss": "ce", "tau": 1.0, "prior_smoothing": 1.0, "lambda_sem": 0.1,
              "sem_warmup": "official", "lambda_pa": 0.0, "pa_pairs": "all", "lambda_ka": 0.0, "ka_dim": 128,
              "ka_temperature": 2.0},
    "evaluate": {"fusion_weight": 0.5, "posthoc_tau": 0.0},
}


@pytest.fixture
def tiny_params(tmp_path):
    """A complete params.yaml (every key) whose values differ from the defaults in several sections."""
    write_params(tmp_path, TINY_PARAMS, base=defaults())
    return tmp_path / "params.yaml"


def read(path):
    return yaml.safe_load(path.read_text())


def test_the_six_dataset_presets_and_reference_ship():
    assert set(REAL_PRESETS) >= {"cifar100-lt-if100", "cifar100-lt-if50", "cifar100-lt-if10", "cifar10-lt-if100",
                                 "imagenet-lt", "places-lt", "reference"}


def test_reference_sets_every_official_value_and_nothing_else(tiny_params):
    result = run_mdpr(["preset", "reference", "--params", str(tiny_params)], cwd=tiny_params.parent)
    assert result.returncode == 0, result.stderr
    after = read(tiny_params)
    for section, values in OFFICIAL.items():
        assert {key: after[section][key] for key in values} == values, section
    assert set(presets.load_preset("reference")) == set(OFFICIAL)  # dataset, encoder and LLM are left alone
    for section in ("dataset", "clip"):
        assert all(after[section][key] == value for key, value in TINY_PARAMS[section].items()), section


@pytest.mark.parametrize("name", DATASET_PRESETS)
def test_dataset_presets_name_every_project_default_that_differs_from_the_official_code(name):
    text = presets.preset_paths()[name].read_text()
    base = defaults()
    differing = [f"{s}.{k}" for s, values in OFFICIAL.items() for k, v in values.items() if base[s][k] != v]
    assert differing and all(key in text for key in differing), [key for key in differing if key not in text]
    assert "mdpr preset reference" in text


@pytest.mark.parametrize("name", DATASET_PRESETS)
def test_preset_validates_and_keeps_the_reference_training_defaults(name):
    preset = presets.load_preset(name)
    merged = presets.merge(defaults(), preset)
    for section, values in merged.items():
        from_dict(SECTIONS[section], values)
    for section, values in REFERENCE.items():
        assert {k: merged[section][k] for k in values} == values
    assert merged["llm"]["backend"] == "openai" and merged["clip"]["pretrained"] == "openai"
    assert merged["dataset"]["name"] == name.split("-if")[0]


@pytest.mark.parametrize("name", sorted(LLM_SERVERS))
def test_llm_server_presets_set_only_the_llm_section_for_their_server(name):
    preset = presets.load_preset(name)
    assert set(preset) == {"llm"}                 # dataset, encoder and training are left alone
    merged = presets.merge(defaults(), preset)
    llm = from_dict(SECTIONS["llm"], merged["llm"])
    assert (llm.backend, llm.base_url) == ("openai", LLM_SERVERS[name])
    assert "mdpr llm-check" in presets.preset_paths()[name].read_text()


def test_every_llm_preset_is_one_of_the_three_servers():
    assert sorted(LLM_PRESETS) == sorted(LLM_SERVERS)


@pytest.mark.parametrize("name", REAL_PRESETS)
def test_applying_a_preset_changes_only_the_keys_it_names(name, tiny_params):
    before = read(tiny_params)
    result = run_mdpr(["preset", name, "--params", str(tiny_params)], cwd=tiny_params.parent)
    assert result.returncode == 0, result.stderr
    after, preset = read(tiny_params), presets.load_preset(name)
    assert list(after) == list(before) and all(list(after[s]) == list(before[s]) for s in before)
    for section, values in before.items():
        for key, old in values.items():
            expected = preset.get(section, {}).get(key, old)
            assert after[section][key] == expected, f"{section}.{key}"
    lines = result.stdout.splitlines()
    changed = [line.split(":")[0].strip() for line in lines[1:lines.index("Next:")]]
    assert changed == [f"{s}.{k}" for s in before for k in before[s] if after[s][k] != before[s][k]]
    assert changed  # every preset sets something TINY_PARAMS does not have


def test_changes_are_printed_key_by_key(tiny_params):
    result = run_mdpr(["preset", "imagenet-lt", "--params", str(tiny_params)], cwd=tiny_params.parent)
    assert result.stdout.splitlines()[0] == f"preset imagenet-lt: 9 key(s) changed in {tiny_params}:"
    assert '  clip.model: "mdpr-tiny" -> "ViT-B-16-quickgelu"' in result.stdout
    assert '  dataset.train_list: null -> "data/splits/ImageNet_LT_train.txt"' in result.stdout
    assert "  runtime.batch_size: 16 -> 512" in result.stdout


def test_unknown_preset_is_one_line_listing_the_available_ones(tiny_params):
    before = tiny_params.read_bytes()
    result = run_mdpr(["preset", "cifar100-lt-if200", "--params", str(tiny_params)], cwd=tiny_params.parent)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: preset: unknown preset 'cifar100-lt-if200'; available: demo, ")
    assert all(name in result.stderr for name in REAL_PRESETS)
    assert tiny_params.read_bytes() == before


def test_demo_after_another_preset_restores_the_file_byte_for_byte(tmp_path):
    params = tmp_path / "params.yaml"
    assert run_mdpr(["preset", "demo", "--params", str(params)], cwd=tmp_path).returncode == 0  # no file yet
    demo_bytes = params.read_bytes()
    assert read(params) == defaults()
    for name in ("places-lt", "cifar10-lt-if100"):
        assert run_mdpr(["preset", name, "--params", str(params)], cwd=tmp_path).returncode == 0
    assert params.read_bytes() != demo_bytes
    result = run_mdpr(["preset", "demo", "--params", str(params)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert params.read_bytes() == demo_bytes


def test_committed_params_yaml_holds_the_demo_values():
    assert yaml.safe_load((REPO / "params.yaml").read_text()) == defaults()


def test_committed_params_yaml_is_what_demo_writes():
    assert (REPO / "params.yaml").read_text() == presets.render(defaults())


def test_missing_keys_are_filled_with_defaults(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  lr: 0.01\n")
    result = run_mdpr(["preset", "cifar100-lt-if50", "--params", str(params)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    merged = read(params)
    assert list(merged) == list(SECTIONS) and merged["train"]["lr"] == 0.01
    assert merged["dataset"]["imbalance_factor"] == 50.0 and merged["model"] == defaults()["model"]
    assert "  train.epochs: (absent) -> 20" in result.stdout


def test_an_invalid_params_file_is_refused_and_left_alone(tiny_params):
    tiny_params.write_text(tiny_params.read_text().replace("  lr: 0.001", "  learning_rate: 0.001"))
    before = tiny_params.read_bytes()
    result = run_mdpr(["preset", "places-lt", "--params", str(tiny_params)], cwd=tiny_params.parent)
    assert result.returncode == 2
    assert "unknown key train.learning_rate" in result.stderr
    assert tiny_params.read_bytes() == before


def test_a_bad_preset_file_names_the_preset_and_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "PRESETS_DIR", tmp_path)
    (tmp_path / "fast.yaml").write_text("# Too fast.\ntrain:\n  lr: 1e-3\n")  # YAML 1.1 reads 1e-3 as a string
    (tmp_path / "typo.yaml").write_text("# Typo.\ntrian:\n  lr: 0.01\n")
    with pytest.raises(UserError, match=r"preset fast: params: train.lr = '1e-3' has the wrong type"):
        presets.load_preset("fast")
    with pytest.raises(UserError, match="preset typo: unknown section 'trian'"):
        presets.load_preset("typo")
    assert presets.available() == {"demo": presets.DEMO_DESCRIPTION, "fast": "Too fast.", "typo": "Typo."}


def test_list_shows_every_preset_with_its_first_comment_line(tmp_path):
    result = run_mdpr(["preset", "--list"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert list(listed) == ["demo", *REAL_PRESETS]
    for name in REAL_PRESETS:
        first_comment = next(line for line in (REPO / "presets" / f"{name}.yaml").read_text().splitlines()
                             if line.startswith("#"))
        assert listed[name] == first_comment.lstrip("# ")
    assert not (tmp_path / "params.yaml").exists()



def test_a_dataset_preset_sets_every_dataset_file_key_so_another_presets_files_never_stay():
    """places-lt after imagenet-lt must not read ImageNet's train list; CIFAR after either must not read their root."""
    params = presets.merge({}, presets.load_preset("imagenet-lt"))
    for name, root in (("places-lt", "data/raw/places365"), ("cifar100-lt-if100", "data/raw"),
                       ("cifar10-lt-if100", "data/raw")):
        params = presets.merge(params, presets.load_preset(name))
        assert (params["dataset"]["root"], params["dataset"]["train_list"]) == (root, None), name
        params = presets.merge(params, presets.load_preset("imagenet-lt"))
