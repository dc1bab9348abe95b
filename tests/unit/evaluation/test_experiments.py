"""Seeds aggregated from `dvc exp show --json` (its layout as DVC 3 writes it): grouping, repeats, mean ± std."""
import statistics

import pytest

from pipeline.evaluation.experiments import format_groups, group_runs, runs_of


def entry(name, lr, seed, top1, rev=None, batch=64, error=None):
    params = {"train": {"lr": lr, "seed": seed}, "runtime": {"batch_size": batch}}
    metrics = {m: {"top1": top1 + d, "mean_class": top1} for m, d in (("base", -0.1), ("mdpr", 0.0))}
    return {"rev": rev or f"{name}-sha", "name": name, "error": error, "experiments": None,
            "data": {"params": {"params.yaml": {"data": params}},
                     "metrics": {"artifacts/metrics/metrics.json": {"data": metrics}}}}


def exp_show(*experiments):
    head = entry("main", 0.001, 0, 0.50)
    head["experiments"] = [{"name": e["name"], "executor": executor, "revs": [e]} for e, executor in experiments]
    return [{**entry(None, 0.003, 0, 0.9, rev="workspace")}, head]


def test_groups_by_every_param_but_the_seed_and_counts_a_repeat_once():
    shown = exp_show((entry("s1", 0.001, 1, 0.60), None), (entry("s2", 0.001, 2, 0.70, batch=8), None),
                     (entry("again", 0.001, 1, 0.60), None),                  # seed 1 rerun: the same run
                     (entry("hi", 0.003, 0, 0.20), None),
                     (entry("broken", 0.003, 1, 0.99, error={"msg": "x"}), None),
                     (entry("failed", 0.003, 2, 0.99), {"state": "failed"}))
    runs = runs_of(shown)
    assert [r.name for r in runs] == ["main", "s1", "s2", "again", "hi"]   # no workspace, error or failed run
    groups = group_runs(runs)
    assert [(g.params["train.lr"], g.seeds, [r.name for r in g.runs]) for g in groups] == [
        (0.001, [0, 1, 2], ["main", "s1", "s2"]), (0.003, [0], ["hi"])]    # runtime ignored; `again` dropped


def test_the_table_prints_mean_and_sample_std_of_each_column():
    shown = exp_show((entry("s1", 0.001, 1, 0.60), None), (entry("s2", 0.001, 2, 0.75), None),
                     (entry("hi", 0.003, 0, 0.20), None))
    text = format_groups(group_runs(runs_of(shown)))
    first, second = text.split("\n\n")
    assert first.splitlines()[0] == "train.lr=0.001: n = 3 (train.seed 0, 1, 2; runs main, s1, s2)"
    values = [0.50, 0.60, 0.75]
    mdpr = next(line for line in first.splitlines() if line.startswith("MDPR (fused)")).split()
    assert mdpr[2:5] == [f"{100 * statistics.fmean(values):.2f}", "±", f"{100 * statistics.stdev(values):.2f}"]
    base = next(line for line in first.splitlines() if line.startswith("base (prompts)")).split()
    assert base[2] == f"{100 * (statistics.fmean(values) - 0.1):.2f}"
    assert "train.lr=0.003: n = 1" in second and "20.00 (n=1)" in second


@pytest.mark.parametrize("split", ["val"])
def test_a_split_the_runs_lack_prints_no_row(split):
    text = format_groups(group_runs(runs_of(exp_show())), split=split)
    assert text.splitlines()[-1].startswith("method")        # metrics.json without `val`: header only


def test_no_experiment_says_how_to_make_some():
    assert "dvc exp run" in format_groups([])
