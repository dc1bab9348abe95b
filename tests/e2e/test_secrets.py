"""The API key never leaves the environment: not in artifacts, logs, the LLM cache, the DVC cache or dvc.lock."""
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers.fake_llm import FakeLLM
from tests.helpers.worlds import REPO, write_params

pytestmark = pytest.mark.slow
SECRET = "sk-test-" + uuid.uuid4().hex  # made at run time, so no file of the repo holds it


def _project_tree(target: Path, world: Path) -> None:
    """The repository's files (as a fresh clone would have them) plus the trained world's artifacts."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        if (REPO / name).is_file() and not name.startswith("artifacts/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    shutil.copytree(world / "artifacts", target / "artifacts", dirs_exist_ok=True)


def test_api_key_is_written_nowhere(tmp_path, trained_world):
    project = tmp_path / "project"
    _project_tree(project, trained_world)
    env = {**os.environ, "MDPR_TEST_KEY": SECRET, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    with FakeLLM() as server:
        write_params(project, {"llm": {"backend": "openai", "base_url": server.url, "api_key_env": "MDPR_TEST_KEY",
                                       "cache_dir": ".cache/llm"}})
        subprocess.run(["dvc", "init", "--no-scm", "--force", "-q"], cwd=project, check=True, env=env)
        result = subprocess.run(["dvc", "repro", "--single-item", "library", "embed_library"], cwd=project,
                                capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        assert server.chat_requests and all(r.headers.get("authorization") == f"Bearer {SECRET}"
                                            for r in server.chat_requests)  # the key did reach the server
    assert SECRET not in result.stdout + result.stderr
    assert "Running stage 'library'" in result.stdout
    leaks = [path for path in project.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()]
    assert leaks == []
    assert (project / "dvc.lock").is_file() and list((project / ".cache" / "llm").iterdir())
