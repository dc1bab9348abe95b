"""The `--smoke` flag of every benchmark script: the same code path at tiny sizes, on the CPU, in seconds.

    args = parse_args(parser, {"classes": [4], "reps": 2})   # in a benchmark's main(): the smoke sizes

`--smoke` makes the given sizes the parser's defaults (an option given on the command line still wins), so the
script runs its whole path (children, servers, files) and prints its `SUMMARY <name>:` line; its figures mean
nothing. tests/e2e/test_benchmarks.py runs every `benchmarks/*.py --smoke` (modules named `_*` are helpers, not
benchmarks).
"""
from __future__ import annotations

import argparse

SMOKE_HELP = "tiny sizes on the CPU, seconds: checks that the code runs and prints its SUMMARY line (no figures)"


def parse_args(parser: argparse.ArgumentParser, smoke_sizes: dict, argv: list[str] | None = None) -> argparse.Namespace:
    """The script's arguments, with `smoke_sizes` as the defaults when `--smoke` is given."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    if parser.parse_known_args(argv)[0].smoke:
        parser.set_defaults(**smoke_sizes)
    return parser.parse_args(argv)
