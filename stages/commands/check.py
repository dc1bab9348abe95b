"""`mdpr check`: every input the current params need, listed at once with its fix, before a run (not a stage).

    mdpr check                  # dataset root and split files, CLIP weights, GPU, LLM key and server, free disk
    mdpr check --offline        # the same without a network request (no hub, download host or LLM server probe)

Prints one line per input (ok, MISSING or note) with the fix under each missing one, then a verdict; exits 0 when
nothing is missing, 2 otherwise. The API key variable is reported set or not set, never its value. The checks
themselves are the wings' (pipeline/data/inputs.py, pipeline/features/inputs.py, pipeline/library/inputs.py,
pipeline/core/findings.py); `findings()` gathers them for any command that needs them.
"""
from __future__ import annotations

import sys

import click

from stages.common import in_project, params_option, user_errors

FEATURES_WHAT = "the image features (embedding chunks, images.h5 and its DVC cache copy)"


def findings(params_file: str, probe: bool = True) -> list:
    """Every finding for the params file, run from the project root (dataset, encoder, GPU, LLM, disk)."""
    from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams, RuntimeParams
    from pipeline.config.library_params import LibraryParams, LLMParams
    from pipeline.config.params import load_sections
    from pipeline.core.findings import disk_finding
    from pipeline.data.inputs import dataset_findings, image_counts
    from pipeline.features.inputs import feature_bytes, gpu_finding, weights_finding
    from pipeline.library.inputs import llm_findings

    dataset, clip, embed, runtime, llm, lib = load_sections(
        params_file, DatasetParams, ClipParams, EmbedParams, RuntimeParams, LLMParams, LibraryParams)
    found = [*dataset_findings(dataset, probe), weights_finding(clip, probe), gpu_finding(clip, runtime),
             *llm_findings(llm, lib, probe)]
    counts = image_counts(dataset)
    found.append(disk_finding(".", feature_bytes(counts, clip, embed) if counts else None, FEATURES_WHAT))
    return found


@click.command(name="check")
@params_option
@click.option("--offline", is_flag=True, help="Make no network request (hub, download host, LLM server).")
@user_errors
def command(params_path: str, offline: bool) -> None:
    """List every input the params need (data, weights, GPU, LLM key and server, disk), each with its fix."""
    from pipeline.core.findings import format_findings, missing_names

    with in_project(params_path) as params_file:
        found = findings(params_file, probe=not offline)
    click.echo(f"mdpr check: {params_path}")
    for line in format_findings(found):
        click.echo(line)
    missing = missing_names(found)
    if missing:
        click.echo(f"error: mdpr check: {len(missing)} of {len(found)} inputs missing ({', '.join(missing)}); fix "
                   "each as shown above, then run `mdpr check` again.", err=True)
        sys.exit(2)
    click.echo(f"mdpr check: all {len(found)} inputs hold; next: `dvc repro`.")
