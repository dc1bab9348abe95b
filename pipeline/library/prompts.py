"""Prompt templates of the semantic library: one versioned text file per dimension under `prompts/`.

    from pipeline.library.prompts import load_template
    template = load_template("differential")
    template.messages("tiger", contrast="tiger cat", k=0, n=1)   # [{"role": "system", ...}, {"role": "user", ...}]
    template.messages("Abies concolor", None, 0, 1, taxonomy="Plantae > Tracheophyta > ... > Abies")   # + [context]
    template.sha                                                  # sha256 of the whole file -> `prompt_sha`

File format (see prompts/general_appearance.txt): comment lines starting with '#' before the first section, then
sections `[system]`, `[user]`, optional `[user_without_contrast]` (differential, for a class with no confused class),
optional `[variant]` (appended to the user message when library.per_dimension > 1, so each of the n
descriptions is a different request) and optional `[context]` (appended when the dataset gives the class's taxonomy,
classes.json `taxonomy`: inat2018; other datasets' requests, and so their cached answers, are unchanged).
Placeholders: {class_name}, {contrast_class}, {k} (1-based), {n}, {taxonomy}.
"""
from __future__ import annotations

import functools
import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import UserError
from pipeline.core.paths import SHIPPED

PROMPTS_DIR = SHIPPED / "prompts"
REQUIRED_SECTIONS = ("system", "user")
OPTIONAL_SECTIONS = ("user_without_contrast", "variant", "context")
PLACEHOLDERS = {"class_name", "contrast_class", "k", "n", "taxonomy"}


@dataclass(frozen=True)
class PromptTemplate:
    """One dimension's template: its sections and the sha256 of the file bytes."""

    dimension: str
    path: Path
    sha: str
    sections: dict

    def messages(self, class_name: str, contrast: str | None, k: int, n: int,
                 taxonomy: str | None = None) -> list[dict]:
        """The chat messages asking for description k (0-based) of n for `class_name` (with its taxonomy, if any)."""
        fields = {"class_name": class_name, "contrast_class": contrast or "", "k": k + 1, "n": n,
                  "taxonomy": taxonomy or ""}
        use_contrast = contrast is not None or "user_without_contrast" not in self.sections
        user = self.sections["user" if use_contrast else "user_without_contrast"].format_map(fields)
        if n > 1 and "variant" in self.sections:
            user += "\n" + self.sections["variant"].format_map(fields)
        if taxonomy and "context" in self.sections:
            user += "\n" + self.sections["context"].format_map(fields)
        return [{"role": "system", "content": self.sections["system"].format_map(fields)},
                {"role": "user", "content": user}]


@functools.lru_cache(maxsize=None)
def load_template(dimension: str, prompts_dir: Path = PROMPTS_DIR) -> PromptTemplate:
    """Read and check `prompts/<dimension>.txt` (a bad file is a UserError naming it)."""
    path = Path(prompts_dir) / f"{dimension}.txt"
    if not path.is_file():
        raise UserError(f"library: prompt template {path} is missing; restore it from git (one file per dimension).")
    data = path.read_bytes()
    sections = _parse_sections(path, data.decode("utf-8"))
    return PromptTemplate(dimension, path, hashlib.sha256(data).hexdigest(), sections)


def _parse_sections(path: Path, text: str) -> dict:
    """Split the file into {section: text}, checking section names and placeholders."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            if current not in REQUIRED_SECTIONS + OPTIONAL_SECTIONS or current in sections:
                raise UserError(f"library: {path} has an unknown or repeated section [{current}]; "
                                f"allowed: {', '.join(REQUIRED_SECTIONS + OPTIONAL_SECTIONS)}.")
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif stripped and not stripped.startswith("#"):
            raise UserError(f"library: {path} has text before its first section; start comment lines with '#'.")
    missing = [name for name in REQUIRED_SECTIONS if not "".join(sections.get(name, [])).strip()]
    if missing:
        raise UserError(f"library: {path} lacks a non-empty [{missing[0]}] section.")
    joined = {name: "\n".join(lines).strip() for name, lines in sections.items()}
    for name, body in joined.items():
        unknown = {field for _, field, _, _ in string.Formatter().parse(body) if field is not None} - PLACEHOLDERS
        if unknown:
            raise UserError(f"library: {path} [{name}] uses unknown placeholder {{{sorted(unknown)[0]}}}; "
                            f"allowed: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))} "
                            "(write {{ for a brace).")
    return joined
