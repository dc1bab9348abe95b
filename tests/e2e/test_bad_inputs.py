"""Bad inputs and damaged caches through the real `mdpr` console script: one line `error: ...`, exit 2, no traceback,
outputs untouched; and the inputs that look odd but are valid (16-bit images, decomposed Unicode names, descriptor
files with extra or unmatched entries, --params from another folder) give the right result (those commands run in
this process: their result is the subject, not the process).

    .venv/bin/python -m pytest tests/e2e/test_bad_inputs.py -q

Each case runs in a private copy of a session world (tests/conftest.py) or of a small folder-dataset world built
here once; the LLM cases use the real fake server on 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from pipeline.core import paths
from pipeline.library.answer_cache import open_cache
from tests.helpers.once import built_once
from tests.helpers.worlds import (
    LLM_KEY_ENV,
    LLM_SECRET,
    copy_world,
    inside,
    mdpr_in_process,
    run_mdpr,
    write_params,
)

CAFE_NFD = unicodedata.normalize("NFD", "café noir")   # a class folder named as macOS writes it: 'e' + U+0301
FOLDER_CLASSES = (CAFE_NFD.replace(" ", "_"), "espresso", "latte")
OFFLINE_WEIGHTS_LIMIT_S = 10.0
"""The offline-weights failure may take this long beyond mdpr's start-up (it took ~56 s of hub retries before)."""


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (what "untouched" compares)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(result, *fragments) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def class_names(project: Path) -> list[str]:
    return json.loads((project / paths.CLASSES).read_text())["names"]


def descriptor_params(project: Path, entries: dict | str, **library) -> None:
    """llm.backend file with `entries` (a dict, or the file's raw text) as library.file, in the project."""
    path = project / "descriptors.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries, ensure_ascii=False))
    write_params(project, {"llm": {"backend": "file"}, "library": {"file": "descriptors.json", **library}})


def texts(name: str, count: int = 5) -> list[str]:
    return [f"A {name} seen from angle {k}." for k in range(count)]


def damaged_llm_cache(project: Path, server, cut) -> None:
    """A real answer cache in .cache/llm, then damaged by `cut` (bytes -> bytes), and the openai backend on it."""
    cache = open_cache(str(project / ".cache/llm"))
    for k in range(300):
        cache.set(f"{k:064x}", {"text": f"answer {k} " * 20, "model": "m", "finish_reason": "stop",
                                "tokens_in": 1, "tokens_out": 1})
    cache.close()
    database = project / ".cache/llm/cache.db"
    database.write_bytes(cut(database.read_bytes()))
    write_params(project, {"llm": {"backend": "openai", "base_url": server.url, "api_key_env": LLM_KEY_ENV,
                                   "cache_dir": ".cache/llm", "timeout_s": 2.0, "max_retries": 1}})


ERRORS: dict[str, tuple] = {}
"""case -> (setup(project, tmp_path, server) -> (fragments of the error line, extra environment), mdpr command)."""


def error_case(case: str, *command: str):
    def register(setup):
        ERRORS[case] = (setup, list(command))
        return setup
    return register


@error_case("classes.json truncated", "embed-classes")
def truncated_classes(project, tmp_path, server):
    (project / paths.CLASSES).write_text((project / paths.CLASSES).read_text()[:300])
    return ["artifacts/data/classes.json is not valid JSON", "mdpr prepare", "dvc repro"], None  # DVC reruns prepare


@error_case("classes.json is {}", "confusion")
def empty_classes(project, tmp_path, server):
    (project / paths.CLASSES).write_text("{}")
    return ["artifacts/data/classes.json is damaged (no names", "mdpr prepare"], None


@error_case("manifest.csv cut mid-line", "embed-images")
def manifest_cut_mid_line(project, tmp_path, server):
    data = (project / paths.MANIFEST).read_bytes()
    (project / paths.MANIFEST).write_bytes(data[:data.index(b"\n", len(data) // 2) + 4])   # 3 characters into a row
    return ["artifacts/data/manifest.csv does not match classes.json", "mdpr prepare"], None


@error_case("manifest.csv cut at a line boundary", "embed-images")
def manifest_cut_at_line(project, tmp_path, server):
    lines = (project / paths.MANIFEST).read_text().splitlines(keepends=True)
    (project / paths.MANIFEST).write_text("".join(lines[:41]))   # header + 40 rows: still a valid CSV
    return ["manifest.csv does not match classes.json (40 rows where classes.json records"], None


@error_case("LLM cache truncated", "library")   # garbage and other cuts: tests/unit/library/test_answer_cache.py
def truncated_llm_cache(project, tmp_path, server):
    damaged_llm_cache(project, server, lambda data: data[:len(data) // 2])
    return ["llm.cache_dir = .cache/llm is damaged", "mv .cache/llm .cache/llm.damaged", "asked again"], \
        {LLM_KEY_ENV: LLM_SECRET}


@error_case("openai weights, no internet, no cache", "embed-classes")   # HF_HUB_OFFLINE=1: tests/unit/features
def weights_unreachable(project, tmp_path, server):
    write_params(project, {"clip": {"model": "ViT-B-32", "pretrained": "openai"}})
    hub = tmp_path / "hf" / "hub"
    return (["clip.pretrained = 'openai' for ViT-B-32", "timm/vit_base_patch32_clip_224.openai", f"cache {hub}",
             "HF_HUB_OFFLINE=1", "local checkpoint file"],
            {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "",
             "HF_ENDPOINT": "http://127.0.0.1:9"})   # nothing listens on port 9: the hub is unreachable anywhere


@error_case("YAML syntax error in params.yaml", "prepare")
def broken_yaml(project, tmp_path, server):
    lines = (project / "params.yaml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.strip() == "name: synthetic-lt") + 1
    lines[number - 1] += ": oops"
    (project / "params.yaml").write_text("\n".join(lines) + "\n")
    return [f"params: params.yaml, line {number}, column 21: not valid YAML (mapping values are not allowed"], None


@error_case("empty params.yaml", "prepare")
def empty_params(project, tmp_path, server):
    (project / "params.yaml").write_text("")
    return ["params: params.yaml is empty", "mdpr preset demo"], None


@error_case("exact duplicate key in a descriptor file", "library")
def duplicate_descriptor_key(project, tmp_path, server):
    descriptor_params(project, '{"red circle": ["A red circle."], "red circle": ["A red disc."]}')
    return ["library.file = descriptors.json has the key 'red circle' twice"], None


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_one_line_and_writes_nothing(case, project, tmp_path, server):
    setup, command = ERRORS[case]
    fragments, env = setup(project, tmp_path, server)
    before = snapshot(project / "artifacts")
    started = time.monotonic()
    result = run_mdpr(command, project, env=env)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, *fragments)
    assert snapshot(project / "artifacts") == before
    assert not server.chat_requests
    if "weights" in case:  # no minute of hub retries: seconds beyond mdpr's own start-up (imports, ~5 s idle)
        started = time.monotonic()
        assert_one_line_error(run_mdpr(["embed-classes", "--params", "absent.yaml"], project), "absent.yaml not found")
        startup = time.monotonic() - started
        assert elapsed - startup < OFFLINE_WEIGHTS_LIMIT_S, f"{elapsed:.1f} s in all, start-up {startup:.1f} s"
        assert not any((tmp_path / "hf").rglob("*.safetensors"))


# --- valid inputs that used to give a wrong or silent result -----------------------------------------------------

@pytest.fixture(scope="module")
def folder_world(tmp_path_factory):
    """A folder dataset through prepare, embed-images, embed-classes and confusion: three classes, one folder named
    in decomposed Unicode, holding a 16-bit grey PNG and its 8-bit twin."""
    from stages import confusion, embed_classes, embed_images, prepare

    def build(world):
        rng = np.random.default_rng(0)
        for name in FOLDER_CLASSES:
            (world / "images" / name).mkdir(parents=True)
            for k in range(5):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(world / "images" / name / f"{k}.png")
        write_twins(world / "images" / FOLDER_CLASSES[0], rng)
        write_params(world, {"dataset": {"name": "folder", "root": "images"}})
        with inside(world):
            for stage in (prepare, embed_images, embed_classes, confusion):
                stage.run()
    return built_once(tmp_path_factory, "folder_world", build)   # read-only: each case copies it


def write_twins(folder: Path, rng) -> tuple[Path, Path]:
    """grey16.png (mode I;16, values v * 257) and grey8.png (mode L, values v): the same picture."""
    grey = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "grey16.png")
    Image.fromarray(grey).save(folder / "grey8.png")
    assert Image.open(folder / "grey16.png").mode == "I;16"
    return folder / "grey16.png", folder / "grey8.png"


def features_by_id(project: Path) -> dict[str, np.ndarray]:
    with h5py.File(project / paths.IMAGES_H5) as handle:
        return {image_id.decode() if isinstance(image_id, bytes) else str(image_id): feature
                for split in handle if isinstance(handle[split], h5py.Group)
                for image_id, feature in zip(handle[split]["ids"][:], handle[split]["features"][:])}


def check_16_bit_png(project: Path, tmp_path: Path) -> None:
    result = mdpr_in_process(["embed-images"], project)
    assert result.returncode == 0, result.stderr
    feats = features_by_id(project)
    folder = FOLDER_CLASSES[0]
    np.testing.assert_allclose(feats[f"{folder}/grey16.png"], feats[f"{folder}/grey8.png"], atol=1e-6)
    assert not np.allclose(feats[f"{folder}/grey8.png"], feats[f"{folder}/0.png"], atol=1e-3)


def check_nfc_names(project: Path, tmp_path: Path) -> None:
    composed = unicodedata.normalize("NFC", "café noir")
    descriptor_params(project, {composed: texts(composed), "espresso": texts("espresso"), "latte": texts("latte")})
    result = mdpr_in_process(["library"], project)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (project / paths.LIBRARY).read_text().splitlines()]
    assert class_names(project)[0] == CAFE_NFD
    assert {(r["class_index"], r["source"]) for r in records} == {(0, "file"), (1, "file"), (2, "file")}


def library_summary(project: Path, entries: dict, **library) -> str:
    descriptor_params(project, entries, **library)
    result = mdpr_in_process(["library"], project)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def check_unmatched_keys(project: Path, tmp_path: Path) -> None:
    entries = {name: texts(name) for name in class_names(project)}
    summary = library_summary(project, {**entries, "eft": texts("eft"), "projectile": texts("projectile")})
    assert "file keys matching no class (2; check their spelling): 'eft', 'projectile'" in summary


def check_descriptions_beyond_the_slots(project: Path, tmp_path: Path) -> None:
    names = class_names(project)
    entries = {name: texts(name, 7 if k < 2 else 5) for k, name in enumerate(names)}
    assert "unused beyond the slots 4, unusable dropped 0" in library_summary(project, entries)


def check_offline_names(project: Path, tmp_path: Path) -> None:
    names = class_names(project)
    summary = library_summary(project, {name: texts(name) for name in names[:-2]}, missing="offline")
    assert f"OFFLINE text for classes missing from the file (2): {names[-2]!r}, {names[-1]!r}" in summary


def check_predict_from_another_folder(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "photos").mkdir(parents=True)
    write_twins(elsewhere / "photos", np.random.default_rng(1))
    result = mdpr_in_process(["predict", "photos/grey16.png", "photos/grey8.png", "--json", "--params",
                       str(Path("..") / project.name / "params.yaml")], elsewhere)
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert first["path"] == "photos/grey16.png" and second["path"] == "photos/grey8.png"
    assert first["top_k"] == second["top_k"]   # the 16-bit image is read as its 8-bit twin


def check_stage_from_another_folder(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / paths.CONFUSION).unlink()
    result = mdpr_in_process(["confusion", "--params", str(Path("..") / project.name / "params.yaml")], elsewhere)
    assert result.returncode == 0, result.stderr
    assert (project / paths.CONFUSION).is_file() and not any(elsewhere.iterdir())


VALID = {
    "16-bit PNG in a folder dataset": ("folder", check_16_bit_png),
    "class names in decomposed Unicode": ("folder", check_nfc_names),
    "descriptor keys that match no class": ("embedded", check_unmatched_keys),
    "more descriptions than slots": ("embedded", check_descriptions_beyond_the_slots),
    "library.missing: offline": ("embedded", check_offline_names),
    "predict --params from another directory": ("trained", check_predict_from_another_folder),
    "a stage with --params from another directory": ("embedded", check_stage_from_another_folder),
}


@pytest.mark.parametrize("case", list(VALID))
def test_valid_input_gets_the_right_result(case, request, tmp_path):
    """The command runs in this process (tests/helpers/worlds.py mdpr_in_process): the subject is its result; the
    console script's own process is what the error cases above run."""
    world, check = VALID[case]
    source = request.getfixturevalue({"folder": "folder_world", "embedded": "embedded_world",
                                      "trained": "trained_world"}[world])
    check(copy_world(source, tmp_path / "project"), tmp_path)
