"""Documentation of the params: defaults of every section and the README's reference table.

    python -m pipeline.params_docs     # prints the params reference (README "Params reference" section)
"""
from __future__ import annotations

import ast
import dataclasses
import inspect

import yaml

from pipeline.params import SECTIONS


def defaults_yaml() -> dict:
    """Every section with its default values (used to write a fresh params.yaml and in the README)."""
    out = {}
    for name, cls in SECTIONS.items():
        out[name] = {f.name: (list(v) if isinstance(v := getattr(cls(), f.name), tuple) else v)
                     for f in dataclasses.fields(cls)}
    return out


def field_docs(cls: type) -> dict[str, str]:
    """The docstring line under each field, read from the source (for `mdpr params` and the README)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value)
    return docs


def reference_markdown() -> str:
    """The params reference of the README: every section, key, default and docstring line."""
    lines = []
    defaults = defaults_yaml()
    for name, cls in SECTIONS.items():
        docs = field_docs(cls)
        lines += [f"**`{name}`**: {cls.__doc__.split(':', 1)[1].strip()}", "",
                  "| key | default | meaning |", "|---|---|---|"]
        for key, value in defaults[name].items():
            shown = yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
            lines.append(f"| `{name}.{key}` | `{shown}` | {docs[key]} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m pipeline.params_docs  (regenerates the README's params reference)
    print(reference_markdown())
