"""`mdpr`: one command per DVC stage, plus report, predict and preset.

    mdpr --help
    mdpr prepare && mdpr embed-images && mdpr embed-classes     # what `dvc repro` runs, stage by stage

Each command reads params.yaml in the working directory (`--params PATH` to override). A problem the user can fix
prints one line `error: ...` and exits with status 2, without a traceback.
"""
from __future__ import annotations

import importlib

import click

from stages.common import params_option, user_errors

def stage_command(name: str, module: str, help_text: str):
    """A click command that runs `stages.<module>.run(params_path)`."""
    @click.command(name=name, help=help_text)
    @params_option
    @user_errors
    def command(params_path: str) -> None:
        importlib.import_module(f"stages.{module}").run(params_path)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """MDPR: multi-dimensional dynamic prompt routing for long-tailed CLIP fine-tuning, as a DVC pipeline."""


STAGES = [
    ("prepare", "prepare", "Write the dataset manifest and classes.json (params: dataset)."),
    ("embed-images", "embed_images", "Encode every image with CLIP into images.h5 (params: dataset, clip, embed)."),
    ("embed-classes", "embed_classes", "Encode the class-name prompts into classes.h5 (params: clip)."),
    ("confusion", "confusion", "Zero-shot confusion on the train split into confusion.json (params: confusion)."),
    ("library", "library", "Write the five-dimension description library (params: llm, library)."),
    ("embed-library", "embed_library", "Encode the library into library.h5 (params: clip)."),
    ("train", "train", "Train class prompts and the router on cached features (params: model, train)."),
    ("evaluate", "evaluate", "Evaluate all methods, write metrics, per-class CSV and plots (params: evaluate)."),
]
for _name, _module, _help in STAGES:
    main.add_command(stage_command(_name, _module, _help))


def _register_extra_commands() -> None:
    """Commands that are not stages live in their own modules (report, predict, preset)."""
    for module in ("report", "predict", "preset"):
        try:
            extra = importlib.import_module(f"stages.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"stages.{module}":
                raise
            continue
        main.add_command(extra.command)


_register_extra_commands()

if __name__ == "__main__":
    main()
