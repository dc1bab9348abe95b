"""`mdpr`: one command per DVC stage, in pipeline order, plus the commands that are not stages.

    mdpr --help
    mdpr prepare && mdpr embed-images && mdpr embed-classes     # what `dvc repro` runs, stage by stage

Each command reads params.yaml in the working directory (`--params PATH` to override) and runs in the folder that
holds it, the project root (stages/common.py). A problem the user can fix prints one line `error: ...` and exits with
status 2, without a traceback.
"""
from __future__ import annotations

import click

from stages import confusion, embed_classes, embed_images, embed_library, evaluate, library, prepare, train
from stages.commands import llm_cache, predict, preset, report
from stages.common import in_project, params_option, user_errors

STAGES = (prepare, embed_images, embed_classes, confusion, library, embed_library, train, evaluate)
"""The DVC stages in pipeline order: module `stages.<name>` runs as `mdpr <name with dashes>`."""


def stage_command(module) -> click.Command:
    """A click command that runs `module.run(params_path)`; its help is the module docstring's first line."""
    name = module.__name__.rsplit(".", 1)[1]

    @click.command(name=name.replace("_", "-"), help=module.__doc__.splitlines()[0])
    @params_option
    @user_errors
    def command(params_path: str) -> None:
        with in_project(params_path) as params_file:
            module.run(params_file)
    return command


class PipelineOrder(click.Group):
    """Lists commands in the order they were added (pipeline order), not alphabetically."""

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)


@click.group(cls=PipelineOrder, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """MDPR: multi-dimensional dynamic prompt routing for long-tailed CLIP fine-tuning, as a DVC pipeline."""


for _stage in STAGES:
    main.add_command(stage_command(_stage))
for _command in (report.command, predict.command, preset.command, llm_cache.command):
    main.add_command(_command)

if __name__ == "__main__":
    main()
