"""The README stays true: it opens with the two commands; docs/params.md matches the code."""
from pipeline.config.docs import reference_markdown
from tests.helpers.worlds import REPO

README = (REPO / "README.md").read_text()
PARAMS_PAGE = (REPO / "docs" / "params.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_params_reference_is_in_sync_with_the_dataclasses():
    assert reference_markdown().strip() in PARAMS_PAGE, "regenerate it with: python -m pipeline.config.docs"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
