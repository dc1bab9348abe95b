"""What the library stage needs before a run: the API key variable set, the LLM server answering, a descriptor file.

    llm_findings(llm, lib)        # backend openai: key variable (set or not, never its value) and one server request
    llm_findings(llm, lib, probe=False)   # the key variable only: no request

The server is asked exactly as `mdpr llm-check` asks it (pipeline/library/llm_check.py), for one dimension only: one
request, no retry, nothing cached. Its failure line (unreachable, timeout, rate limit, wrong key, model or URL) is
the finding.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.core.errors import UserError
from pipeline.core.findings import MISSING, NOTE, OK, Finding
from pipeline.library.llm import read_api_key
from pipeline.library.llm_check import check_server

CHECK_CLASS = "golden retriever"
"""The class the server is asked to describe."""
LOCAL_SERVER_PRESETS = "mdpr preset llm-vllm, llm-ollama or llm-llama-cpp"


def llm_findings(llm: LLMParams, lib: LibraryParams, probe: bool = True) -> list[Finding]:
    """The inputs of the llm backend: none (offline), the descriptor file (file), the key and server (openai)."""
    if llm.backend == "offline":
        return [Finding("LLM", OK, "llm.backend offline: descriptions written from class names, no server")]
    if llm.backend == "file":
        return [descriptor_file_finding(lib)]
    key = key_finding(llm)
    if key.status != OK:
        return [key, Finding("LLM server", NOTE, "not asked: the API key variable is not usable yet")]
    if not probe:
        return [key, Finding("LLM server", NOTE, "not asked (offline check)")]
    return [key, server_finding(llm, lib)]


def key_finding(llm: LLMParams) -> Finding:
    """Whether the variable llm.api_key_env names holds a usable key; its value is never shown."""
    name = "API key variable"
    try:
        read_api_key(llm)
    except UserError as err:
        state = "is set but cannot be sent" if os.environ.get(llm.api_key_env, "").strip() else "is not set"
        local = f"; for a local server, {LOCAL_SERVER_PRESETS}" if llm.base_url is None else ""
        fix = str(err).removeprefix("llm: ").rstrip(".")
        return Finding(name, MISSING, f"{llm.api_key_env} (llm.api_key_env) {state}", f"{fix}{local}")
    return Finding(name, OK, f"{llm.api_key_env} is set (its value is not shown)")


def server_finding(llm: LLMParams, lib: LibraryParams) -> Finding:
    """One request to the server (the first dimension's prompt): its latency, or why it failed."""
    where = f"{llm.base_url or 'api.openai.com'}, model {llm.model!r}"
    try:
        [check] = check_server(llm, replace(lib, dimensions=lib.dimensions[:1]), CHECK_CLASS)
    except UserError as err:
        return Finding("LLM server", MISSING, where, str(err))
    verdict = "a usable answer" if check.problem is None else f"an answer the stage would ask again ({check.problem})"
    return Finding("LLM server", OK, f"{where}: {verdict} in {check.latency_s:.1f} s (`mdpr llm-check` for every "
                   "dimension)")


def descriptor_file_finding(lib: LibraryParams) -> Finding:
    """library.file, the descriptions the file backend imports, set and present."""
    if not lib.file:
        return Finding("descriptor file", MISSING, "llm.backend is file but library.file is not set",
                       "set library.file to your JSON {class name: [descriptions]}")
    if not Path(lib.file).is_file():
        return Finding("descriptor file", MISSING, f"library.file {lib.file} not found",
                       "put the JSON there or point library.file at it")
    return Finding("descriptor file", OK, lib.file)
