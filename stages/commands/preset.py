"""`mdpr preset`: merge a named preset (presets/NAME.yaml) into params.yaml.

    mdpr preset --list                        # the presets, one line each
    mdpr preset imagenet-lt                   # set the keys it names, keep every other key, print what changed
    mdpr preset demo --params params.yaml     # back to the offline demo defaults

The merge and its checks live in pipeline/config/presets.py; the file is written atomically, and only when valid.
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
