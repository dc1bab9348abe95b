"""What every `mdpr` command shares: the --params option and turning user errors into one line.

    @click.command()
    @params_option
    @user_errors
    def command(params_path): ...
"""
from __future__ import annotations

import functools
import logging
import os
import sys

import click

from pipeline.core.errors import UserError
from stages.dvc_hints import dvc_hint

params_option = click.option("--params", "params_path", default="params.yaml", show_default=True,
                             type=click.Path(dir_okay=False), help="Params file to read.")


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
            hint = dvc_hint(str(err))
            click.echo(f"error: {err}" + (f" {hint}" if hint else ""), err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume.", err=True)
            sys.exit(130)
    return wrapper
