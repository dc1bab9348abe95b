"""Team sharing for real: the commands of docs/team-sharing.md typed by teammates A and B in two clones.

    .venv/bin/python -m pytest tests/e2e/test_team_sharing.py -q      # about 4 minutes on 2 cores

Real parts only: a loopback S3-compatible object store (moto's server, tests/helpers/s3.py) as the DVC remote, a
bare Git repo on disk as the Git host, the loopback LLM server (tests/helpers/fake_llm.py), and this venv's `dvc`,
`git` and `mdpr` in subprocesses. Each command line of the page is typed as written; only four placeholders are
substituted (PLACEHOLDERS). A starts from the session's repro'd repo (tests/e2e/conftest.py) and switches the library
to the LLM; B clones. The last test checks that every command of the page is typed here.
"""
from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tests.helpers.dvc_repo import copy_repo, dvc, dvc_status, git, ran, run, set_identity, set_param
from tests.helpers.fake_llm import FakeLLM
from tests.helpers.pages import command_of
from tests.helpers.pages import commands as page_commands
from tests.helpers.s3 import LoopbackS3
from tests.helpers.worlds import REPO, TINY_PARAMS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("dvc_environment")]

LLM_SECRET = "sk-test-" + uuid.uuid4().hex  # made at run time, so no file of the repo holds it
AWS_SECRET = "test-secret-" + uuid.uuid4().hex  # stands for the page's example secret access key
CLASSES = TINY_PARAMS["dataset"]["num_classes"]
DIMENSIONS = 5
PLACEHOLDERS = ("http://minio.example.com:9000", "git@git.example.com:team/mdpr.git", "sk-your-key",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
"""What the page names that only a real team has: the S3 endpoint, the Git URL, the LLM API key and the secret
access key of the store (the last two are made at run time here, so no file of the repo holds them)."""


class Teammate:
    """A person at a terminal: types command lines (the page's placeholders substituted) in their clone, with their own
    environment variables; `cd` and `export` act as in a shell, `&&` chains, `#` starts a comment."""

    def __init__(self, cwd: Path, substitutions: dict[str, str], env: dict[str, str] | None = None):
        self.cwd, self.substitutions, self.env = cwd, substitutions, dict(env or {})

    def type(self, line: str) -> str:
        """Run the line; fail the test unless every command of it succeeds; stdout + stderr."""
        command = command_of(line)
        for placeholder, value in self.substitutions.items():
            command = command.replace(placeholder, value)
        output = ""
        for part in command.split(" && "):
            words = shlex.split(part)
            if words[0] == "cd":
                self.cwd = self.cwd / words[1]
            elif words[0] == "export":
                self.env.update(word.split("=", 1) for word in words[1:])
            else:
                output += run(["bash", "-c", part], self.cwd, self.env)
        return output

    def copy(self, target: Path) -> "Teammate":
        """The same person in a private copy of their clone."""
        return Teammate(copy_repo(self.cwd, target), self.substitutions, self.env)


@pytest.fixture(scope="module")
def services(tmp_path_factory, dvc_environment):
    """The team's infrastructure: the S3 store, the LLM server and the Git host; no AWS or OpenAI settings leak in."""
    home = tmp_path_factory.mktemp("team")
    with pytest.MonkeyPatch.context() as patch, LoopbackS3("mdpr-team") as store, FakeLLM() as llm:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_DEFAULT_REGION", "OPENAI_API_KEY"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        run(["git", "init", "-q", "--bare", str(home / "origin.git")], home)
        substitutions = dict(zip(PLACEHOLDERS, (store.url, str(home / "origin.git"), LLM_SECRET, AWS_SECRET)))
        yield {"home": home, "store": store, "llm": llm, "origin": home / "origin.git", "substitutions": substitutions}


@pytest.fixture(scope="module")
def team(services, built):
    """Part 1: A sets up the S3 remote, runs the pipeline with the LLM and pushes; B clones and pulls."""
    home, llm, origin = services["home"], services["llm"], services["origin"]
    a = Teammate(copy_repo(built[0], home / "a"), services["substitutions"])
    git(a.cwd, "remote", "add", "origin", str(origin))  # the team's Git repo exists: A pushes the project to it
    git(a.cwd, "push", "-q", "-u", "origin", "HEAD")
    git(origin, "symbolic-ref", "HEAD", "refs/heads/" + git(a.cwd, "branch", "--show-current").strip())
    a.type("export OPENAI_API_KEY=sk-your-key")
    a.type("dvc remote add -d team s3://mdpr-team/dvc-store")
    a.type("dvc remote modify team endpointurl http://minio.example.com:9000   # MinIO or another S3-compatible")
    a.type('git commit -m "DVC remote: team" .dvc/config && git push')
    a.type("dvc remote modify --local team access_key_id AKIAIOSFODNN7EXAMPLE")
    a.type("dvc remote modify --local team secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    for key, value in {"backend": "openai", "base_url": llm.url}.items():
        set_param(a.cwd, "llm", key, value)  # A edits params.yaml: the library now comes from the LLM
    outputs = {"a_repro": a.type("dvc repro && dvc push                        # A: uploads only what it lacks")}
    outputs["a_requests"] = len(llm.chat_requests)
    a.type('git commit -am "run the pipeline" && git push')

    (home / "b").mkdir()
    b = Teammate(home / "b", services["substitutions"])
    b.type("git clone git@git.example.com:team/mdpr.git mdpr && cd mdpr   # B")
    set_identity(b.cwd)  # B's own git author (commits, `dvc exp`)
    outputs["b_pull_without_credentials"] = subprocess.run(["dvc", "pull"], cwd=b.cwd, capture_output=True, text=True)
    b.type("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE "
           "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    outputs["b_pull"] = b.type("dvc pull                                     # every output named in dvc.lock")
    outputs["b_status"] = b.type("dvc status                                   # Data and pipelines are up to date.")
    outputs["b_repro"] = b.type("dvc repro                                    # runs nothing")
    return {"a": a, "b": b, "outputs": outputs}


@pytest.fixture(scope="module")
def shared(team, services):
    """Parts 2-4 on A's side: LLM answers shared, an experiment run and pushed with the run-cache; B pulls."""
    a, b = team["a"], team["b"]
    outputs = {"export": a.type("mdpr llm-cache export                        # A, after a library run")}
    a.type("dvc add llm-answers/*.jsonl && dvc push")
    a.type('git add llm-answers && git commit -m "share LLM answers" && git push')
    outputs["exp_run"] = a.type("dvc exp run -n lr-high -S train.lr=0.003     # A: runs train and evaluate")
    outputs["a_lock"] = yaml.safe_load((a.cwd / "dvc.lock").read_text())
    outputs["a_metrics"] = json.loads((a.cwd / "artifacts/metrics/metrics.json").read_text())
    a.type("dvc push --run-cache")
    a.type("dvc exp push origin lr-high                  # A")
    b.type("git pull && dvc pull                         # B, on A's commit")
    return outputs


def test_a_clone_pulls_everything_from_the_object_store_and_recomputes_nothing(team, services):
    outputs, b = team["outputs"], team["b"]
    assert ran(outputs["a_repro"]) == {"library", "embed_library", "train", "evaluate"}, outputs["a_repro"]
    assert outputs["a_requests"] == DIMENSIONS * CLASSES
    library = (team["a"].cwd / "artifacts/library/library.jsonl").read_text()
    records = [json.loads(line) for line in library.splitlines()]
    assert {r["source"] for r in records} == {"llm"}  # the LLM's answers, no offline stand-in
    assert re.search(r"\d+ files? pushed", outputs["a_repro"]) and any(
        key.startswith("dvc-store/files/md5/") for key in services["store"].objects())
    refused = outputs["b_pull_without_credentials"]
    assert refused.returncode != 0 and "credentials" in refused.stderr, refused.stderr  # what the export lets in
    assert re.search(r"\d+ files? (fetched|added)", outputs["b_pull"]), outputs["b_pull"]
    assert "Data and pipelines are up to date." in outputs["b_status"]
    assert ran(outputs["b_repro"]) == set() and "is cached" not in outputs["b_repro"], outputs["b_repro"]
    assert dvc_status(b.cwd, env=b.env) == {}
    assert json.loads(dvc(b.cwd, "status", "--cloud", "--json", env=b.env).strip().splitlines()[-1]) == {}
    assert (b.cwd / "artifacts/library/library.jsonl").read_bytes() == \
        (team["a"].cwd / "artifacts/library/library.jsonl").read_bytes()


def test_params_a_teammate_already_ran_are_restored_from_the_run_cache(shared, team, tmp_path):
    b = team["b"].copy(tmp_path / "mdpr")
    model_md5 = next(out["md5"] for out in shared["a_lock"]["stages"]["train"]["outs"]
                     if out["path"] == "artifacts/model/model.pt")
    assert ran(shared["exp_run"]) == {"train", "evaluate"}, shared["exp_run"]
    assert not (b.cwd / ".dvc/cache/files/md5" / model_md5[:2] / model_md5[2:]).exists()  # B never had this model
    output = b.type("dvc exp run --pull -S train.lr=0.003         # B")
    assert ran(output) == set(), output
    for stage in ("train", "evaluate"):
        assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in output
    lock = yaml.safe_load((b.cwd / "dvc.lock").read_text())
    assert lock["stages"]["train"]["outs"] == shared["a_lock"]["stages"]["train"]["outs"]
    assert json.loads((b.cwd / "artifacts/metrics/metrics.json").read_text()) == shared["a_metrics"]


def test_an_experiment_pushed_by_a_is_listed_pulled_shown_and_applied_by_b(shared, team, tmp_path):
    b = team["b"].copy(tmp_path / "mdpr")
    assert "lr-high" in b.type("dvc exp list origin                          # B")
    b.type("dvc exp pull origin lr-high")
    table = b.type("dvc exp show --only-changed --drop '.*routing' # lr-high with its params and metrics")
    shown = exp_show_row(table, "[lr-high]")
    assert shown.get("train.lr") == "0.003", table
    evaluation = {name: f"{value:.5g}" for name, value in _flat(shared["a_metrics"]).items()
                  if isinstance(value, (int, float))}  # artifacts/metrics/metrics.json, as the table rounds it
    compared = {column: value for column, value in shown.items() if column in evaluation}
    assert compared and all(value == evaluation[column] for column, value in compared.items()), table
    b.type("dvc exp apply lr-high")
    assert yaml.safe_load((b.cwd / "params.yaml").read_text())["train"]["lr"] == 0.003
    assert json.loads((b.cwd / "artifacts/metrics/metrics.json").read_text()) == shared["a_metrics"]


def exp_show_row(table: str, name: str) -> dict[str, str]:
    """The row of `dvc exp show` whose experiment cell holds `name`, as {column: cell} (cells are 2+ spaces apart)."""
    lines = [line.strip() for line in table.splitlines() if line.strip() and not set(line.strip()) <= set("─ ")]
    header = re.split(r"\s{2,}", lines[0])
    (row,) = [re.split(r"\s{2,}", line) for line in lines if name in line]
    assert header[0] == "Experiment" and len(row) == len(header), table
    return dict(zip(header, row))


def test_after_importing_the_answers_a_changed_prompt_costs_one_dimension(shared, team, services, tmp_path):
    b, llm = team["b"].copy(tmp_path / "mdpr"), services["llm"]
    assert f"{DIMENSIONS * CLASSES} new answers" in shared["export"], shared["export"]
    imported = b.type("mdpr llm-cache import                        # llm-answers/ -> B's llm.cache_dir")
    assert f"{DIMENSIONS * CLASSES} added" in imported, imported
    prompt = b.cwd / "prompts/context.txt"
    prompt.write_text(prompt.read_text().replace("\n[variant]\n", "\nMention the season.\n[variant]\n", 1))
    b.type("export OPENAI_API_KEY=sk-your-key")
    llm.reset()
    output = b.type("dvc repro                                    # after editing prompts/context.txt")
    assert ran(output) == {"library", "embed_library", "train", "evaluate"}, output
    assert len(llm.chat_requests) == CLASSES, [r.user_text[:60] for r in llm.chat_requests]
    assert all("Mention the season." in r.user_text for r in llm.chat_requests)
    assert all(r.headers.get("authorization") == f"Bearer {LLM_SECRET}" for r in llm.chat_requests)
    records = [json.loads(line) for line in (b.cwd / "artifacts/library/library.jsonl").read_text().splitlines()]
    assert {r["source"] for r in records} == {"llm"}


def test_nothing_secret_reaches_the_object_store_or_the_git_host(shared, team, services):
    assert AWS_SECRET in (team["a"].cwd / ".dvc/config.local").read_text()  # A's secret is on A's disk, not shared
    objects = services["store"].objects()
    shards = [data for data in objects.values() if b'"answer": {' in data]
    assert len(shards) == 1 and shards[0].count(b"\n") == DIMENSIONS * CLASSES, "the LLM answers were not pushed"
    git_objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=services["origin"],
                                 capture_output=True, check=True).stdout
    assert b".jsonl.dvc" in git_objects  # the shards' .dvc files are in Git
    for secret in (LLM_SECRET, AWS_SECRET):
        assert not [key for key, data in objects.items() if secret.encode() in data], secret
        assert secret.encode() not in git_objects, secret
    assert services["llm"].url.encode() not in shards[0]  # the answers' keys never cover the server URL


def typed_here() -> set[str]:
    """The command lines this module types (string literals passed to `.type(...)`)."""
    tree = ast.parse(Path(__file__).read_text())
    return {command_of(node.args[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "type"
            and node.args and isinstance(node.args[0], ast.Constant)}


def test_every_command_of_the_page_is_typed_by_these_tests():
    commands = page_commands("docs/team-sharing.md")
    assert len(commands) >= 20
    missing = [command for command in commands if command not in typed_here()]
    assert not missing, f"docs/team-sharing.md commands no test runs: {missing}"


def test_the_remote_extras_exist_and_the_dev_extra_installs_s3_and_the_test_server():
    pyproject = (REPO / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = dict(re.findall(r"^(\w+) = \[(.*)\]$", section, flags=re.M))
    assert extras["s3"] == '"dvc[s3]"' and extras["ssh"] == '"dvc[ssh]"' and extras["gs"] == '"dvc[gs]"'
    assert '"dvc[s3]"' in extras["dev"] and '"moto[server]' in extras["dev"]


def _flat(tree: dict, prefix: str = "") -> dict:
    """Nested metrics as DVC names them: {"val": {"mdpr": {"top1": x}}} -> {"val.mdpr.top1": x}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
