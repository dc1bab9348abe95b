"""Mean ± std over seeds from DVC's experiments: what `mdpr report --experiments` prints.

    runs = runs_of(json.loads(subprocess.run(["dvc", "exp", "show", "--json"], ...).stdout))
    groups = group_runs(runs, over="train.seed")      # one group per distinct params apart from the seed
    print(format_groups(groups, split="test"))        # per group: n, the seeds, mean ± std per method and column

Runs are the commit `dvc exp show` lists (HEAD) and its experiments that hold an evaluation (artifacts/metrics/
metrics.json); the workspace row is left out (it repeats HEAD or an applied experiment). Two runs with the same
params, the seed included, are one run (DVC reruns are deterministic on a CPU): counting both would shrink the std.
The `runtime` and `plan` sections are ignored when grouping (no stage declares them). std is the sample std (n - 1).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from pipeline.evaluation.report import COLUMNS, LABELS

METRICS_FILE = "artifacts/metrics/metrics.json"
IGNORED_SECTIONS = ("runtime", "plan")


@dataclass(frozen=True)
class Run:
    """One evaluated run: its name, its params flattened ("train.lr": 0.001) and its metrics.json."""

    name: str
    params: dict
    metrics: dict


@dataclass(frozen=True)
class Group:
    """Runs that differ only in the seed key."""

    params: dict             # the shared params (flattened), without the seed key
    seeds: list              # the seed of each run, in run order
    runs: list[Run]


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 0.001}} -> {"train.lr": 0.001} (lists kept as values)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def runs_of(exp_show: list[dict]) -> list[Run]:
    """The evaluated runs of `dvc exp show --json`: each baseline commit, then its experiments (workspace left out;
    failed or unevaluated runs skipped)."""
    runs = []

    def visit(entry: dict, name: str) -> None:
        data = entry.get("data") or {}
        metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data")
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
        if entry.get("error") is None and metrics and params:
            runs.append(Run(name, flatten(params), metrics))

    for commit in exp_show:
        if commit.get("rev") == "workspace":
            continue
        visit(commit, commit.get("name") or commit.get("rev", "")[:7])
        for experiment in commit.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state", "success") != "success":
                continue
            for rev in experiment.get("revs") or []:
                visit(rev, rev.get("name") or rev.get("rev", "")[:7])
    return runs


def group_runs(runs: list[Run], over: str = "train.seed") -> list[Group]:
    """Runs grouped by every param apart from `over` (and the runtime section); a repeat of identical params is
    counted once. Groups in order of first appearance."""
    groups: dict[tuple, Group] = {}
    seen = set()
    for run in runs:
        kept = {k: v for k, v in run.params.items() if k.split(".")[0] not in IGNORED_SECTIONS}
        identity = repr(sorted(kept.items()))
        if identity in seen:
            continue
        seen.add(identity)
        shared = {k: v for k, v in kept.items() if k != over}
        key = repr(sorted(shared.items()))
        group = groups.setdefault(key, Group(shared, [], []))
        group.seeds.append(run.params.get(over))
        group.runs.append(run)
    return list(groups.values())


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def aggregate(group: Group, split: str = "test") -> dict[str, dict[str, tuple[float, float | None]]]:
    """{method: {column: (mean, std)}} over the group's runs, for the columns every run has."""
    tables = [run.metrics.get("val", {}) if split == "val" else run.metrics for run in group.runs]
    out = {}
    for method in LABELS:
        for column in COLUMNS:
            values = [table[method][column] for table in tables if column in table.get(method, {})]
            if values and len(values) == len(tables):
                out.setdefault(method, {})[column] = mean_std(values)
    return out


def differing_params(groups: list[Group]) -> list[str]:
    """The param keys whose values differ between groups (what tells them apart)."""
    keys = sorted({k for g in groups for k in g.params})
    return [k for k in keys if len({repr(g.params.get(k)) for g in groups}) > 1]


def format_groups(groups: list[Group], split: str = "test", over: str = "train.seed") -> str:
    """Per group: its distinguishing params, n and the seeds, then mean ± std (in %) per method and column."""
    if not groups:
        return "no evaluated experiment found: run `dvc exp run` (e.g. `dvc exp run --queue -S train.seed=1,2`)."
    keys = differing_params(groups)
    parts = []
    for group in groups:
        named = ", ".join(f"{k}={group.params.get(k)}" for k in keys) or "the committed params"
        seeds = ", ".join(str(s) for s in group.seeds)
        lines = [f"{named}: n = {len(group.runs)} ({over} {seeds}; runs {', '.join(r.name for r in group.runs)})",
                 f"{split} split, mean ± std (%) over the {len(group.runs)} runs:",
                 f"{'method':<22}" + "".join(f"{c:>16}" for c in COLUMNS)]
        table = aggregate(group, split)
        for method, cells in table.items():
            lines.append(f"{LABELS[method]:<22}" + "".join(f"{_cell(cells.get(c)):>16}" for c in COLUMNS))
        if not table:
            lines.append(f"(no {split} metric is present in all {len(group.runs)} runs: a run evaluated by older code "
                         f"lacks it; rerun it with `dvc exp run`)")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _cell(value: tuple[float, float | None] | None) -> str:
    if value is None:
        return "-"
    mean, std = value
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else " (n=1)")
