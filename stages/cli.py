"""`mdpr`: one command per DVC stage, in pipeline order, plus the commands that are not stages.

    mdpr --help
    mdpr --version                                              # mdpr and the versions of what it runs on
    mdpr prepare && mdpr embed-images && mdpr embed-classes     # what `dvc repro` runs, stage by stage
    eval "$(_MDPR_COMPLETE=bash_source mdpr)"                   # tab completion in bash (zsh_source, fish_source)

Each command reads params.yaml in the working directory (`--params PATH` to override) and runs in the folder that
holds it, the project root (stages/common.py). A problem the user can fix prints one line `error: ...` and exits with
status 2, without a traceback: our own errors (stages/common.py) and click's (an unknown command or option, a bad
value) alike.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from importlib import metadata

import click

from stages.common import in_project, params_option, user_errors

STAGES = ("prepare", "embed_images", "embed_classes", "confusion", "library", "embed_library", "train", "evaluate")
"""The DVC stages in pipeline order: module `stages.<name>` runs as `mdpr <name with dashes>`."""
STAGE_COMMANDS = tuple(name.replace("_", "-") for name in STAGES)
COMMANDS = {"report": "stages.commands.report", "predict": "stages.commands.predict",
            "preset": "stages.commands.preset", "check": "stages.commands.check",
            "llm-cache": "stages.commands.llm_cache", "llm-check": "stages.commands.llm_check"}
"""The commands that are not stages: name -> module holding a click `command` (imports only click at the top)."""
VERSIONS_OF = ("torch", "open_clip_torch", "dvc", "openai")
"""Distributions whose versions `mdpr --version` prints beside its own (what a bug report needs)."""


def module_docstring_line(module_name: str) -> str:
    """The first line of a module's docstring, read from its source without importing it (no torch at start-up)."""
    source = importlib.util.find_spec(module_name).origin
    docstring = ast.get_docstring(ast.parse(open(source, encoding="utf-8").read())) or ""
    return docstring.splitlines()[0] if docstring else ""


def stage_command(command_name: str) -> click.Command:
    """A click command that imports `stages.<name>` only when it runs, then calls its `run(params_path)`; its help is
    the module docstring's first line."""
    module_name = f"stages.{command_name.replace('-', '_')}"

    @click.command(name=command_name, help=module_docstring_line(module_name))
    @params_option
    @user_errors
    def command(params_path: str) -> None:
        with in_project(params_path) as params_file:
            importlib.import_module(module_name).run(params_file)
    return command


def version_line() -> str:
    """'mdpr 0.1.0 (torch 2.5.1, open_clip_torch 3.2.0, dvc 3.67.1, openai 2.8.1; Python 3.11.2)'."""
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"
    others = ", ".join(f"{name} {version(name)}" for name in VERSIONS_OF)
    return f"mdpr {version('mdpr')} ({others}; Python {sys.version.split()[0]})"


def usage_error_line(err: click.ClickException) -> str:
    """click's own error (unknown command or option, bad value, missing argument) as our one `error:` line."""
    message = " ".join(err.format_message().split())
    command = err.ctx.command_path if getattr(err, "ctx", None) is not None else "mdpr"
    return f"error: {command}: {message} (`{command} --help` shows the usage)"


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_line())
        ctx.exit()


class LazyPipeline(click.Group):
    """The `mdpr` group: commands listed in pipeline order (then the others), each module imported only when its
    command runs or shows its own help, so `mdpr --help`, `--version` and tab completion start in a blink; click's
    usage errors are reported in the project's one error style."""

    def list_commands(self, ctx) -> list[str]:
        return [*STAGE_COMMANDS, *COMMANDS]

    def get_command(self, ctx, name: str) -> click.Command | None:
        if name in STAGE_COMMANDS:
            return stage_command(name)
        if name in COMMANDS:
            return importlib.import_module(COMMANDS[name]).command
        return None

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as err:  # click suggests from self.commands, empty in a lazy group
            raise click.exceptions.NoSuchCommand(err.command_name, possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            click.echo(usage_error_line(err), err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("interrupted.", err=True)
            sys.exit(130)
        sys.exit(status if isinstance(status, int) else 0)


@click.group(cls=LazyPipeline, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the versions of mdpr, torch, open_clip, dvc, openai and Python, and exit.")
def main() -> None:
    """MDPR: multi-dimensional dynamic prompt routing for long-tailed CLIP fine-tuning, as a DVC pipeline."""


if __name__ == "__main__":
    main()
