"""Benchmark: how fast `mdpr` starts (help, version) against the floor of any click program, `import click`.

    .venv/bin/python benchmarks/cli.py [--runs 11]      # medians of N runs of each command, in one go
    .venv/bin/python benchmarks/cli.py --smoke          # one run each: the same code path in seconds

The `mdpr` group imports a command's module only when that command runs or shows its help (stages/cli.py), so the
start-up pays for Python and click, not torch. Targets on an idle 2-core machine: `mdpr --help` and `mdpr --version`
under 0.5 s and under 3x `python -c "import click"`, timed in the same run; exits 1 when a target is missed (not in
--smoke, whose single runs on a busy machine say nothing). Last line:
`SUMMARY cli: <help s> help, <ratio>x import click`.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 0.5
TARGET_RATIO = 3.0


def median_seconds(argv: list[str], runs: int) -> float:
    """Median wall time of `argv` over `runs` runs (each must exit 0)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="Runs of each command (the median is reported).")
    parser.add_argument("--smoke", action="store_true", help="One run of each command; no targets enforced.")
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs
    script = Path(sys.executable).parent / "mdpr"  # the console script a user runs, beside this Python
    mdpr = [str(script)] if script.exists() else [sys.executable, "-m", "stages.cli"]
    click_s = median_seconds([sys.executable, "-c", "import click"], runs)
    help_s = median_seconds([*mdpr, "--help"], runs)
    version_s = median_seconds([*mdpr, "--version"], runs)
    print(f"cli: median of {runs} run(s): import click {click_s:.3f} s, mdpr --help {help_s:.3f} s "
          f"({help_s / click_s:.2f}x), mdpr --version {version_s:.3f} s ({version_s / click_s:.2f}x)")
    missed = [name for name, seconds in (("--help", help_s), ("--version", version_s))
              if seconds >= TARGET_S or seconds >= TARGET_RATIO * click_s]
    print(f"SUMMARY cli: {help_s:.2f} s help, {help_s / click_s:.1f}x import click")
    if missed and not args.smoke:
        print(f"cli: target missed by mdpr {', '.join(missed)} (< {TARGET_S} s and < {TARGET_RATIO:.0f}x import "
              "click)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
