"""The README and docs/getting-started.md stay true: the README opens with the two commands, every command in their
code blocks is run by a test (the cheap ones here, as written), and docs/params.md matches the dataclasses.

    .venv/bin/python -m pytest tests/e2e/test_readme.py -q      # a few seconds: `mdpr preset` runs here
"""
from __future__ import annotations

import re
import shlex
import shutil

import pytest
import yaml

from pipeline.config.docs import reference_markdown
from tests.helpers.pages import commands
from tests.helpers.worlds import REPO, run_mdpr

README = (REPO / "README.md").read_text()
PARAMS_PAGE = (REPO / "docs" / "params.md").read_text()
PAGES = ["README.md", "docs/getting-started.md"]
"""The pages a newcomer types from: each command of their code blocks must be run by a test."""
RUN_HERE = ("mdpr preset", "mdpr --help")
"""Commands cheap enough to run here as written (the lazy CLI, no stage)."""
RUN_ELSEWHERE = {
    "make test": (".ci/run", "make test"),
    "make test-fast": ("Makefile", "test-fast: $(STAMP)\n\tPATH=\"$(CURDIR)/$(BIN):$$PATH\" DVC_NO_ANALYTICS=1 "
                                   "$(BIN)/python -m pytest -q $(PYTEST_PARALLEL) tests/unit\n"),
    "make demo": ("Makefile", "demo: $(STAMP)\n\tPATH=\"$(CURDIR)/$(BIN):$$PATH\" DVC_NO_ANALYTICS=1 $(BIN)/dvc repro\n"
                              "\t$(BIN)/mdpr report\n"),
    "dvc repro": ("tests/e2e/conftest.py", 'dvc(repo, "repro"'),
    "mdpr report": ("tests/e2e/test_cli.py", 'run_mdpr(["report"], '),
    "mdpr check": ("tests/e2e/test_first_run.py", '[str(VENV_BIN / "mdpr"), "check"]'),
    "export OPENAI_API_KEY=sk-your-key": ("tests/e2e/test_team_sharing.py",
                                          '.type("export OPENAI_API_KEY=sk-your-key")'),
}
"""Command -> (file, text there that runs it): `make demo` is `dvc repro` then `mdpr report`, each run below; CI runs
`make test`; the team-sharing test types the export as written."""


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_readme_is_short_and_links_to_every_docs_page():
    assert len(README.splitlines()) <= 200
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)[)#]", README))
    assert linked == {path.name for path in (REPO / "docs").glob("*.md")}


def test_params_reference_is_in_sync_with_the_dataclasses():
    assert reference_markdown().strip() in PARAMS_PAGE, "regenerate it with: python -m pipeline.config.docs"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("page", PAGES)
def test_every_command_of_the_page_is_run_by_a_test(page):
    found = commands(page)
    assert "make demo" in found and "make test" in found
    for command in found:
        assert command.startswith(RUN_HERE) or command in RUN_ELSEWHERE, f"{page}: no test runs `{command}`"
    for command in set(found) & set(RUN_ELSEWHERE):
        where, runs = RUN_ELSEWHERE[command]
        assert runs in (REPO / where).read_text(), f"{where} no longer runs `{command}`"


def test_the_cheap_commands_run_as_written(tmp_path):
    """`mdpr preset ...` as the README shows it, on a copy of params.yaml: it lists the presets the README names and
    sets what the 4 steps say (CIFAR-100-LT under data/raw, ViT-B/16 with OpenAI weights, gpt-4o-mini)."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    ran = [command for page in PAGES for command in commands(page) if command.startswith(RUN_HERE)]
    assert "mdpr preset --list" in ran and "mdpr preset cifar100-lt-if100" in ran
    for command in ran:
        result = run_mdpr(shlex.split(command)[1:], tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        if command == "mdpr preset --list":
            listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
            assert {"cifar100-lt-if100", "llm-vllm", "llm-ollama", "llm-llama-cpp", "reference", "demo"} <= listed
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["dataset"]["name"] == "cifar100-lt" and params["dataset"]["root"] == "data/raw"
    assert params["clip"]["model"].startswith("ViT-B-16") and params["clip"]["pretrained"] == "openai"
    assert params["llm"]["backend"] == "openai" and params["llm"]["model"] == "gpt-4o-mini"
    assert params["llm"]["api_key_env"] == "OPENAI_API_KEY"
