"""The params reference (docs/params.md), generated from the typed sections and the docstring line under each field.

    python -m pipeline.config.docs     # prints the table of docs/params.md (a test keeps them in sync)
"""
from __future__ import annotations

import ast
import inspect

import yaml

from pipeline.config.params import SECTIONS, defaults


def field_docs(cls: type) -> dict[str, str]:
    """The docstring line under each field, read from the source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def reference_markdown() -> str:
    """The params reference of docs/params.md: every section, key, default and docstring line."""
    lines = []
    values = defaults()
    for name, cls in SECTIONS.items():
        docs = field_docs(cls)
        lines += [f"**`{name}`**: {cls.__doc__.split(':', 1)[1].strip()}", "",
                  "| key | default | meaning |", "|---|---|---|"]
        for key, value in values[name].items():
            shown = yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
            lines.append(f"| `{name}.{key}` | `{shown}` | {docs[key]} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
