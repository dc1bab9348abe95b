"""Cached pretrained-tag weights in a fresh process with the hub online: loaded from the local Hugging Face cache
without a single connection to the hub (whose address is a local listener that counts connections).

    .venv/bin/python -m pytest tests/e2e/test_weights_online.py -q

A process of its own (the end-to-end tier): huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT when it is imported.
The offline lookups and messages are in tests/unit/features/test_weights.py.
"""
import os
import socket
import subprocess
import sys
import threading

from pipeline.config.data_params import ClipParams
from pipeline.features.clip import load_encoder
from tests.helpers.hub_cache import REPO_ID, put_in_cache
from tests.helpers.worlds import REPO

CACHED_LOAD_SCRIPT = """
import sys
from open_clip import pretrained
from pipeline.config.data_params import ClipParams
from pipeline.features.clip import load_encoder, register_configs
register_configs()
pretrained._PRETRAINED["mdpr-tiny"] = {"fake": {"url": "", "hf_hub": sys.argv[1] + "/"}}
print(load_encoder(ClipParams(pretrained="fake"), "cpu").identity["pretrained"])
"""


def test_cached_weights_are_used_without_a_single_connection_when_online_mode_is_on(tmp_path):
    """HF_HUB_OFFLINE unset and HF_ENDPOINT a local listener that counts connections: the cached file is loaded and
    the hub is never contacted (open_clip alone would ask it first, and retry for a minute when it cannot answer)."""
    put_in_cache(tmp_path / "hub", load_encoder(ClipParams(seed=5), "cpu").model.state_dict())
    listener = socket.create_server(("127.0.0.1", 0))
    connections = []

    def accept():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "",
           "HF_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}"}
    try:
        result = subprocess.run([sys.executable, "-c", CACHED_LOAD_SCRIPT, REPO_ID], capture_output=True, text=True,
                                env=env, timeout=300)
    finally:
        listener.close()
    assert result.returncode == 0 and result.stdout.strip() == "fake", result.stderr
    assert connections == [] and "Retrying" not in result.stderr
