"""Benchmark: the library stage's LLM calls, concurrent vs sequential, and a rerun from the cache.

    .venv/bin/python benchmarks/llm.py [--classes 200] [--latency 0.1] [--concurrency 32] [--sequential-classes 20]
                                   [--smoke]

Starts the fake OpenAI-compatible server (tests/helpers/fake_llm.py) in its own process with a fixed latency per answer,
then times build_library on classes x 5 dimensions requests with llm.concurrency = N, times a sequential run
(concurrency 1) on a subset and extrapolates it linearly to the full count (said in the output), and reruns the
concurrent build on its warm cache, counting the requests the server receives (must be 0). Exits 1 when the
speed-up is under the target (15x; not checked with --smoke) or the rerun sends a request. Last line:
`SUMMARY llm: <speed-up>x faster with concurrency N ..., rerun <requests> requests -> OK`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._smoke import parse_args
from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.config.schema import from_dict
from pipeline.library.build import build_library
from pipeline.library.descriptions import count_clip_tokens

KEY_ENV = "MDPR_BENCH_KEY"
TARGET_SPEEDUP = 15.0
SMOKE = {"classes": 4, "latency": 0.01, "concurrency": 4, "sequential_classes": 2}  # --smoke


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    """The fake server in a child process (so it does not share our GIL); returns it and its base URL."""
    child = subprocess.Popen([sys.executable, "-m", "tests.helpers.fake_llm", "--port", "0", "--latency", str(latency)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    return child, line.split(" on ", 1)[1].split()[0]


def server_requests(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as response:
        return json.load(response)["chat_requests"]


def timed_build(url: str, names: list[str], concurrency: int, cache_dir: str) -> tuple[float, int, dict]:
    """Seconds, requests the server received, and the summary of one build_library run."""
    llm = from_dict(LLMParams, {"backend": "openai", "base_url": url, "api_key_env": KEY_ENV, "model": "bench-model",
                                "concurrency": concurrency, "cache_dir": cache_dir, "timeout_s": 30.0})
    contrasts = names[1:] + names[:1]
    before = server_requests(url)
    start = time.perf_counter()
    _, summary = build_library(names, contrasts, llm, LibraryParams(), progress=False)
    seconds = time.perf_counter() - start
    return seconds, server_requests(url) - before, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential-classes", type=int, default=20)
    args = parse_args(parser, SMOKE)
    os.environ.setdefault(KEY_ENV, "EMPTY")
    count_clip_tokens("")  # load the tokenizer (and torch) and the openai SDK before timing
    import openai  # noqa: F401
    names = [f"class {i:03d}" for i in range(args.classes)]
    child, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            concurrent_s, concurrent_requests, summary = timed_build(url, names, args.concurrency, f"{scratch}/a")
            assert summary["fallbacks"] == 0, summary
            subset = names[:args.sequential_classes]
            subset_s, subset_requests, _ = timed_build(url, subset, 1, f"{scratch}/b")
            rerun_s, rerun_requests, rerun_summary = timed_build(url, names, args.concurrency, f"{scratch}/a")
    finally:
        child.terminate()
        child.wait(timeout=10)
    sequential_s = subset_s * concurrent_requests / subset_requests
    speedup = sequential_s / concurrent_s
    print(f"fake server latency {args.latency * 1000:.0f} ms; {args.classes} classes x 5 dimensions")
    print(f"concurrency {args.concurrency}: {concurrent_requests} requests in {concurrent_s:.2f} s "
          f"({concurrent_requests / concurrent_s:.0f} requests/s)")
    print(f"sequential (concurrency 1): {subset_requests} requests in {subset_s:.2f} s, extrapolated linearly to "
          f"{concurrent_requests} requests: {sequential_s:.1f} s")
    print(f"rerun on the warm cache: {rerun_requests} requests received by the server "
          f"(client counted {rerun_summary['requests']}, cache hits {rerun_summary['cache_hits']}) in {rerun_s:.2f} s")
    ok = (speedup >= TARGET_SPEEDUP or args.smoke) and rerun_requests == 0
    target = "not checked: smoke run" if args.smoke else f"target {TARGET_SPEEDUP:.0f}x"
    print(f"SUMMARY llm: {speedup:.1f}x faster with concurrency {args.concurrency} ({target}), "
          f"rerun {rerun_requests} requests -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
