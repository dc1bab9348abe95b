"""`mdpr llm-check`: ask the LLM server of params.yaml one description per dimension for one class (not a stage).

    mdpr llm-check                              # the first class of classes.json, or "golden retriever"
    mdpr llm-check --class "snow leopard"       # any class name

Prints the server, model and class, then per dimension the latency, the tokens and the answer with the library
stage's verdict on it (the differential prompt in its form without a contrast class); fails with one line on a wrong
key, model or URL, an unreachable server, a timeout or a rate limit. Nothing is cached: run it before `dvc repro`
with `llm.backend: openai` (pipeline/library/llm_check.py).
"""
from __future__ import annotations

import json

import click

from pipeline.core import paths
from stages.common import params_option, user_errors

DEFAULT_CLASS = "golden retriever"


@click.command(name="llm-check")
@params_option
@click.option("--class", "class_name", default=None, metavar="NAME",
              help="Class to describe (default: the first class of artifacts/data/classes.json, else "
                   f"{DEFAULT_CLASS!r}).")
@user_errors
def command(params_path: str, class_name: str | None) -> None:
    """Check the LLM server: one request per dimension for one class; latency, tokens and answers."""
    from pipeline.config.library_params import LibraryParams, LLMParams
    from pipeline.config.params import load_sections
    from pipeline.library.llm_check import check_server, format_checks

    llm, lib = load_sections(params_path, LLMParams, LibraryParams)
    class_name = class_name or _first_class()
    click.echo(f"llm-check: {llm.base_url or 'api.openai.com'}, model {llm.model!r}, class {class_name!r}, "
               f"{len(lib.dimensions)} dimension(s)")
    if llm.backend != "openai":
        click.echo(f"note: llm.backend is {llm.backend}: the library stage asks this server only with "
                   "llm.backend: openai.")
    for line in format_checks(check_server(llm, lib, class_name)):
        click.echo(line)


def _first_class() -> str:
    """The first class name of the prepared dataset, when there is one."""
    try:
        return json.loads(paths.CLASSES.read_text(encoding="utf-8"))["names"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return DEFAULT_CLASS
