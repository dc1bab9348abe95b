"""`mdpr preset`: merge a named preset (presets/NAME.yaml) into params.yaml.

    mdpr preset --list                        # the presets, one line each
    mdpr preset imagenet-lt                   # set the keys it names, keep every other key, print what changed
    mdpr preset demo --params params.yaml     # back to the offline demo defaults

The merge and its checks live in pipeline/config/presets.py; the file is written atomically, and only when valid.
After the changes it prints a "Next:" block for the params now in the file: the data to obtain (what, from where,
where it goes), the LLM key variable or local-server preset, whether a GPU is expected, then `mdpr check`, which
verifies all of it at once (stages/commands/check.py).
"""
from __future__ import annotations

import click

from pipeline.core.atomic import write_text
from pipeline.core.errors import UserError
from stages.common import params_option, user_errors


@click.command(name="preset")
@click.argument("name", required=False)
@params_option
@click.option("--list", "list_only", is_flag=True, help="List the presets with a one-line description.")
@user_errors
def command(name: str | None, params_path: str, list_only: bool) -> None:
    """Merge preset NAME into params.yaml (only the keys it names change); --list shows the presets."""
    from pipeline.config import presets

    if list_only:
        catalogue = presets.available()
        width = max(map(len, catalogue))
        for preset_name, description in catalogue.items():
            click.echo(f"{preset_name:<{width}}  {description}")
        return
    if not name:
        raise UserError(f"preset: name a preset (or --list); available: {', '.join(presets.available())}.")
    merged, changed = presets.apply_preset(name, params_path)
    write_text(params_path, presets.render(merged))  # rewritten even when unchanged: canonical order and form
    if not changed:
        click.echo(f"{params_path} already matches preset {name}; nothing changed.")
    else:
        click.echo(f"preset {name}: {len(changed)} key(s) changed in {params_path}:")
        for line in presets.format_changes(changed):
            click.echo(line)
    for line in next_steps(merged):
        click.echo(line)


def next_steps(params: dict) -> list[str]:
    """What a user does between choosing these params and the first run, ending with the command that checks it."""
    from pipeline.data.sources import SOURCES

    dataset, clip, llm = params["dataset"], params["clip"], params["llm"]
    source = SOURCES.get(dataset["name"])
    if dataset["name"] == "synthetic-lt":
        data = "nothing to obtain (synthetic-lt is generated)"
    elif source is None:
        data = f"the {dataset['name']} files, under {dataset['root']}"
    elif dataset["name"].startswith("cifar") and dataset["download"]:
        data = (f"prepare downloads {source.obtain} into {dataset['root']} on the first run (needs internet; "
                f"offline, extract it there yourself: {source.layout})")
    else:
        data = f"{source.obtain}, under {dataset['root']} as {source.layout}"
    if dataset["name"] == "imagenet-lt":
        data += (f"; ImageNet_LT_train.txt from the ImageNet-LT release (facebookresearch/classifier-balancing) "
                 f"saved as {dataset['train_list'] or 'data/splits/ImageNet_LT_train.txt'}")
    gpu = clip["precision"] == "fp16" or clip["model"] != "mdpr-tiny"
    lines = ["Next:", f"  data:  {data}", f"  LLM:   {_llm_step(llm)}",
             f"  GPU:   {'expected' if gpu else 'not needed'} ({clip['model']}, {clip['precision']}; CLIP weights "
             f"{clip['pretrained']})"]
    return lines + ["  then:  `mdpr check` lists every missing input at once, with its fix; then `dvc repro`"]


def _llm_step(llm: dict) -> str:
    if llm["backend"] == "offline":
        return "none (llm.backend offline: descriptions written from class names)"
    if llm["backend"] == "file":
        return "your descriptor JSON at library.file"
    if llm["base_url"]:
        return (f"a server at {llm['base_url']} serving {llm['model']!r}, and `export {llm['api_key_env']}=...` (any "
                "value for a local server); `mdpr llm-check` asks it")
    return (f"`export {llm['api_key_env']}=...` with your OpenAI key (read from the environment only), or a local "
            "server: `mdpr preset llm-vllm` (llm-ollama, llm-llama-cpp)")
