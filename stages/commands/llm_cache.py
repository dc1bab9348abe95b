"""`mdpr llm-cache`: share the LLM answer cache with the team through a DVC-tracked folder (not a stage).

    mdpr llm-cache export [--dir llm-answers]     # local answers the folder lacks -> one new shard in it
    mdpr llm-cache import [--dir llm-answers]     # the folder's answers -> llm.cache_dir (local answers kept)

The shards travel with `dvc add llm-answers/*.jsonl && dvc push` / `dvc pull` (README, "Team sharing"); the shards
and their checks live in pipeline/library/answer_sharing.py. Both read llm.cache_dir from params.yaml and, like
every command, run in the folder of that params file (the project), so llm.cache_dir and --dir are project paths.
"""
from __future__ import annotations

import click

from pipeline.core.paths import SHARED_ANSWERS
from stages.common import in_project, params_option, user_errors

folder_option = click.option("--dir", "folder", default=str(SHARED_ANSWERS), show_default=True,
                             type=click.Path(file_okay=False),
                             help="The DVC-tracked folder of shared answers (in the project).")


@click.group(name="llm-cache")
def command() -> None:
    """Share LLM answers with the team: export the local cache to a DVC-tracked folder, import a teammate's."""


def subcommand(name: str):
    """Decorator: `mdpr llm-cache NAME [--params PATH] [--dir FOLDER]` runs `func(llm_params, folder)`."""
    def decorate(func):
        @command.command(name=name, help=func.__doc__)
        @params_option
        @folder_option
        @user_errors
        def cli(params_path: str, folder: str) -> None:
            from pipeline.config.library_params import LLMParams
            from pipeline.config.params import load_params

            with in_project(params_path) as params_file:
                func(load_params(params_file, LLMParams), folder)
        return cli
    return decorate


@subcommand("export")
def export(llm, folder: str) -> None:
    """Write the answers of llm.cache_dir that the folder lacks as one new shard; then `dvc add` it."""
    from pipeline.library.answer_sharing import export_answers

    done = export_answers(llm.cache_dir, folder)
    if done.shard is None:
        click.echo(f"llm-cache export: nothing new; {folder}/ already holds every answer of {llm.cache_dir} "
                   f"({done.shared} shared).")
        return
    click.echo(f"llm-cache export: {done.new} new answers -> {done.shard} ({done.shared} were already shared); "
               f"share them: `dvc add {folder}/*.jsonl && dvc push`, then commit {folder}/ (its .dvc files).")


@subcommand("import")
def import_(llm, folder: str) -> None:
    """Add the folder's answers that llm.cache_dir lacks (after `dvc pull`); answers already cached are kept."""
    from pipeline.library.answer_sharing import import_answers

    done = import_answers(llm.cache_dir, folder)
    line = (f"llm-cache import: {done.answers} answers in {done.shards} shards of {folder}/: {done.added} added to "
            f"{llm.cache_dir}, {done.present} already there")
    if done.differing:
        line += f" ({done.differing} with another answer, kept as it was)"
    click.echo(line + ".")
