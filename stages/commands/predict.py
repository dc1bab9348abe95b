"""`mdpr predict`: classify image files or folders with the trained model (not a DVC stage).

    mdpr predict photo.jpg                      # top-5 classes, routing per dimension, most-routed description
    mdpr predict photos/ --top-k 3 --json       # one JSON list of per-image objects on stdout
    mdpr predict photos/ --out preds.csv --skip-unreadable    # batch results as CSV, with a progress bar

Reads params.yaml: clip (must name the encoder the features were made with), evaluate (fusion weight, post-hoc
adjustment) and runtime (device, batch size, workers), and the model and caches of that params file's project, after
`dvc repro` there; image paths and --out are relative to where it is started.
"""
from __future__ import annotations

import json

import click

from pipeline.core.atomic import write_csv
from pipeline.core.errors import UserError
from stages.common import in_project, params_option, user_errors


@click.command(name="predict")
@click.argument("inputs", nargs=-1, required=True, metavar="PATH...")
@params_option
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Classes listed per image.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of per-image results.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write results to this CSV (atomically) instead of text.")
@click.option("--skip-unreadable", is_flag=True, help="Report unreadable images on stderr and go on.")
@user_errors
def command(inputs: tuple[str, ...], params_path: str, top_k: int, as_json: bool, out: str | None,
            skip_unreadable: bool) -> None:
    """Top-k classes of image files or folders, with the router's view of the top class."""
    _predict(inputs, params_path, top_k, as_json, out, skip_unreadable)


def _predict(inputs: tuple[str, ...], params_path: str, top_k: int, as_json: bool, out: str | None,
             skip_unreadable: bool) -> None:
    # the model's code (torch, open_clip) is imported when a prediction runs, not for `mdpr --help`
    from pipeline.config.data_params import ClipParams, RuntimeParams
    from pipeline.config.model_params import EvaluateParams
    from pipeline.config.params import load_sections
    from pipeline.data.images import collect_images
    from pipeline.evaluation import predict as predict_lib

    images = collect_images(list(inputs))  # relative to where the command is started
    with in_project(params_path) as params_file:
        predictor = predict_lib.load_predictor(*load_sections(params_file, ClipParams, EvaluateParams, RuntimeParams))
    results, skipped = predict_lib.predict(predictor, images, top_k, skip_unreadable, progress=out is not None)
    for error in skipped:
        click.echo(f"skipped: {error}", err=True)
    if not results:
        raise UserError(f"predict: none of the {len(images)} image(s) could be read.")
    if out:
        write_csv(out, [predict_lib.as_csv_row(r) for r in results])
    if as_json:
        click.echo(json.dumps([predict_lib.as_record(r) for r in results], indent=2, ensure_ascii=False))
    elif out:
        click.echo(f"predict: {len(results)} image(s) -> {out}" + (f", {len(skipped)} skipped" if skipped else ""))
    else:
        for result in results:
            click.echo(predict_lib.format_text(result))
