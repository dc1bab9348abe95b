"""`mdpr plan`: what `dvc repro` would do and cost, per stage, before running it (no LLM request, no file written).

    mdpr plan                       # one line per stage: images, texts, LLM requests, tokens, price, disk, time
    mdpr plan --json                # the same as JSON, for scripts
    mdpr plan --params presets-run/params.yaml

Reads params.yaml (every section; prices and assumptions in the `plan` section), the dataset as `mdpr prepare` would
read it (or the published sizes of ImageNet-LT, Places-LT and iNaturalist 2018 when it is not here yet),
confusion.json when it exists (the differential prompts name each class's confused class) and the LLM answer cache;
times the encoder on a few random images on runtime.device. The logic lives in pipeline/evaluation/plan.py; heavy
modules are imported when the command runs, not when `mdpr` starts.
"""
from __future__ import annotations

import json

import click

from stages.common import in_project, params_option, user_errors


@click.command(name="plan")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@params_option
@user_errors
def command(as_json: bool, params_path: str) -> None:
    """Print what `dvc repro` would do and cost per stage (LLM requests, tokens, price, caches, time)."""
    from pipeline.config.params import SECTIONS, load_sections
    from pipeline.evaluation.plan import format_plan, make_plan

    with in_project(params_path) as params_file:
        sections = dict(zip(SECTIONS, load_sections(params_file, *SECTIONS.values())))
        plan = make_plan(sections)
    click.echo(json.dumps(plan, indent=2) if as_json else format_plan(plan))
