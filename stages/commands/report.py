"""`mdpr report`: the results of the last evaluation, as tables, as one offline HTML page, or over seeds.

    mdpr report [--metrics PATH]                  # val and test tables and what training kept (metrics.json)
    mdpr report --html report.html                # one self-contained page: tables, plots, params, encoder, LLM
    mdpr report --experiments [--split val]       # mean ± std over train.seed of every DVC experiment of HEAD

--experiments reads `dvc exp show --json` (run `dvc exp run --queue -S train.seed=0,1,2 && dvc queue start` first)
and groups the runs by every param apart from the seed (pipeline/evaluation/experiments.py).
"""
import json
import subprocess
import sys
from pathlib import Path

import click

from pipeline.core import paths
from pipeline.core.atomic import write_text
from pipeline.core.errors import UserError
from stages.common import params_option, user_errors


@click.command("report", help="Print the results of the last evaluation; or write them as one offline HTML page "
                              "(--html); or aggregate DVC experiments over seeds (--experiments).")
@click.option("--metrics", "metrics_path", default=str(paths.METRICS), show_default=True, type=click.Path(),
              help="The metrics.json to read (written by `mdpr evaluate`).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report (tables, plots, params, encoder, LLM, fallbacks, kept epoch).")
@click.option("--experiments", is_flag=True,
              help="Mean ± std and n over the seed key for each distinct params of `dvc exp show` (run in the DVC "
                   "project).")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="--experiments: the split to aggregate.")
@click.option("--over", default="train.seed", show_default=True, metavar="KEY",
              help="--experiments: the param the runs of a group differ in.")
@params_option
@user_errors
def command(metrics_path: str, html_path: str | None, experiments: bool, split: str, over: str,
            params_path: str) -> None:
    # the report's code (plots: matplotlib, h5py) is imported when it runs, not for `mdpr --help`
    from pipeline.evaluation.experiments import format_groups, group_runs, runs_of
    from pipeline.evaluation.html import collect_inputs, render_html
    from pipeline.evaluation.report import format_report

    if experiments:
        click.echo(format_groups(group_runs(runs_of(exp_show()), over), split, over))
        return
    if html_path:
        write_text(html_path, render_html(collect_inputs(Path(params_path), Path(metrics_path))))
        click.echo(f"report: {html_path} (self-contained; open it in any browser, offline)")
        return
    path = Path(metrics_path)
    if not path.is_file():
        raise UserError(f"{path} not found; run `mdpr evaluate` (or `dvc repro`) first.")
    click.echo(format_report(json.loads(path.read_text())))


def exp_show() -> list[dict]:
    """`dvc exp show --json` of the project in the working directory, by this Python's DVC."""
    result = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[:200]
        raise UserError(f"report --experiments: `dvc exp show --json` failed ({detail}); run it inside the DVC "
                        "project, after `dvc exp run`.")
    return json.loads(result.stdout)
