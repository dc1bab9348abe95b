"""Every params value naming a file or folder, and the dvc.yaml dependency that makes a change in it rerun the stages
that read it (tests/unit/test_path_deps.py holds dvc.yaml to it).

    PATH_PARAMS["library.file"]      # ('${library.file}',): the value itself, interpolated, is the dependency

A stage's output is stale the moment a file it read changes unseen: `dvc status` says "up to date", and DVC's
run-cache (keyed by params and dependency hashes) restores an output made from the file's old contents. So every
path-valued param is covered in one of two ways, and dvc.yaml lists the covering deps in every stage that reads it:
- **interpolated**: `${section.key}` is itself a dependency. DVC cannot interpolate null (it fails with "unexpected
  error"), so such a param is never null: its default is a committed placeholder folder (dataset.root: data/raw;
  library.file: data/descriptors, which only the `file` backend reads);
- **under a declared folder**: the value must lie under one of the listed folders, all of them dependencies of the
  stage, and the code reading it refuses anything else with one line (pipeline/data/sources.py for the dataset
  files, pipeline/features/clip.py for a local checkpoint under data/checkpoints/).
NOT_INPUTS are paths no stage reads as an input; NOT_PATHS are string params that name no file. A new string param
must be added to one of the three tables (the test fails until it is).
"""
from __future__ import annotations

PATH_PARAMS = {
    "dataset.root": ("${dataset.root}",),
    "dataset.features_file": ("${dataset.root}",),
    "dataset.split_file": ("${dataset.root}",),
    "dataset.train_list": ("${dataset.root}", "data/splits"),
    "dataset.train_counts_file": ("${dataset.root}", "data/splits"),
    "clip.pretrained": ("data/checkpoints",),
    "library.file": ("${library.file}",),
}
"""Path-valued param -> the dvc.yaml deps that cover it (each a dependency of every stage that reads the param)."""

NOT_INPUTS = {
    "llm.cache_dir": "the LLM answer cache, a memo of answers keyed by each request, which the library stage "
                     "writes as it runs: as a DVC dependency it would change with every run of the stage itself, "
                     "which could then never be up to date",
}
"""Path-valued params that are not stage inputs, and why."""

NOT_PATHS = {
    "clip.model": "an open_clip architecture name",
    "runtime.device": "a torch device",
    "llm.base_url": "a server URL",
    "llm.model": "the model name sent to the server",
    "llm.api_key_env": "an environment variable name",
    "model.ctx_init": "prompt text",
}
"""String params that name no file."""
