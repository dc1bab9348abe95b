"""The library stage's inputs in a bare folder: classes.json and confusion.json as prepare and confusion write them,
the test key in the environment and an `llm` section against a fake server.

    project = library_project(tmp_path, monkeypatch)           # the working directory, inputs for NAMES written
    write_params(project, {"llm": openai_section(server, project, max_retries=0)})
"""
import json

from pipeline.core import paths
from pipeline.data import manifest
from pipeline.library import llm as llm_module
from tests.helpers.worlds import LLM_KEY_ENV, LLM_SECRET

KEY_ENV, SECRET = LLM_KEY_ENV, LLM_SECRET
"""The tests' API key variable and its value (tests/helpers/worlds.py)."""
NAMES = ["tiger", "lynx", "owl"]
"""The default classes (write_inputs: tiger is confused with lynx, lynx with tiger and owl)."""


def write_inputs(project, names=NAMES, confused=None):
    """classes.json and confusion.json as prepare and confusion write them (confused: {index: [names]})."""
    confused = {0: ["lynx"], 1: ["tiger", "owl"], 2: []} if confused is None else confused
    (project / "artifacts/data").mkdir(parents=True, exist_ok=True)
    (project / "artifacts/library").mkdir(parents=True, exist_ok=True)
    write_classes_json(project, names)
    classes = [{"index": i, "name": name, "zero_shot_train_acc": 0.5,
                "confused_with": [{"index": names.index(n), "name": n, "count": 1} for n in confused.get(i, [])]}
               for i, name in enumerate(names)]
    (project / "artifacts/library/confusion.json").write_text(json.dumps({"classes": classes}))


def write_classes_json(project, names):
    """classes.json as prepare writes it, for `names` with 10 training images each."""
    rows = [("train", f"{label}_{k}.png", label) for label in range(len(names)) for k in range(10)]
    manifest.write_classes(project / paths.CLASSES, manifest.classes_record(names, rows, "folder"))


def library_project(tmp_path, monkeypatch):
    """`tmp_path` as the working directory with the stage's inputs, the test key set and fast retries."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setattr(llm_module, "BACKOFF_BASE_S", 0.01)
    write_inputs(tmp_path)
    return tmp_path


def openai_section(server, project, **values):
    return {"backend": "openai", "base_url": server.url, "api_key_env": KEY_ENV, "cache_dir": str(project / "cache"),
            "timeout_s": 2.0, "max_retries": 2, **values}
