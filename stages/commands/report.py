"""`mdpr report`: print the results tables (val, test, what was kept) of an existing artifacts/metrics/metrics.json.

    mdpr report [--metrics PATH]
"""
import json
from pathlib import Path

import click

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.evaluation.report import format_report
from stages.common import user_errors


@click.command("report", help="Print the results tables of an existing metrics.json.")
@click.option("--metrics", "metrics_path", default=str(paths.METRICS), show_default=True, type=click.Path())
@user_errors
def command(metrics_path: str) -> None:
    path = Path(metrics_path)
    if not path.is_file():
        raise UserError(f"{path} not found; run `mdpr evaluate` (or `make demo`) first.")
    click.echo(format_report(json.loads(path.read_text())))
