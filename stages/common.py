"""What every `mdpr` command shares: the --params option, running in the project, and user errors as one line.

    @click.command()
    @params_option
    @user_errors
    def command(params_path):
        with in_project(params_path) as params_file: ...

The project is the folder that holds the params file: a command reads and writes its artifacts/, .cache/ and the
other relative paths of params.yaml there, wherever it is started from (DVC runs every stage in that folder too), so
`mdpr predict photo.jpg --params ../run2/params.yaml` uses ../run2/artifacts. Paths a user types on the command line
(images to predict, --out) stay relative to where the command is started.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

import click

from pipeline.core.errors import UserError

params_option = click.option("--params", "params_path", default="params.yaml", show_default=True,
                             type=click.Path(dir_okay=False), help="Params file to read.")


@contextlib.contextmanager
def in_project(params_path: str) -> Iterator[str]:
    """Work in the folder holding the params file (the project root) for the block; yields the file's name there."""
    path = Path(params_path)
    if not path.is_file():
        raise UserError(f"params: {path} not found (looked in {path.parent.resolve()}); run from the project root or "
                        f"pass --params PATH.")
    previous = Path.cwd()
    os.chdir(path.parent)
    try:
        yield path.name
    finally:
        os.chdir(previous)


def quiet_libraries() -> None:
    """Hide open_clip's 'initialised randomly' notice and similar chatter from third-party loggers."""
    logging.getLogger().setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def user_errors(func):
    """Turn a UserError into one line on stderr and exit status 2 (plus how DVC restores a missing pipeline output,
    inside a DVC project); Ctrl-C into a hint and status 130."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        quiet_libraries()
        try:
            return func(*args, **kwargs)
        except UserError as err:
            from stages.dvc_hints import dvc_hint  # yaml: only on the error path

            hint = dvc_hint(str(err))
            click.echo(f"error: {err}" + (f" {hint}" if hint else ""), err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume.", err=True)
            sys.exit(130)
    return wrapper
