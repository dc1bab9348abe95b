"""Results in real DVC: `dvc plots show` / `dvc plots diff` draw every chart of dvc.yaml from the files evaluate and
train write (their HTML page renders offline in a headless browser), `mdpr report --experiments` aggregates three
queued seeds, and a fresh clone is told to `dvc pull`.

    .venv/bin/python -m pytest tests/e2e/test_results.py -q          # about 3 minutes on 2 cores

One session repo is `dvc repro`'d (tests/e2e/conftest.py); this module copies it once and queues three seeds with
another learning rate (`dvc exp run --queue` + `dvc queue start`), as the README's "Experiments" section says.
"""
from __future__ import annotations

import csv
import json
import re
import statistics
import time
from pathlib import Path

import pytest

from tests.helpers.browser import rendered_dom
from tests.helpers.dvc_repo import VENV_BIN, copy_repo, dvc, git, run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("dvc_environment")]

CHARTS = {"loss", "accuracy", "accuracy_by_group", "accuracy_by_frequency", "confusion_classes", "confusion_groups",
          "routing", "routing_entropy"}
IMAGES = {f"artifacts/metrics/plots/{name}.png" for name in ("accuracy_by_group", "accuracy_by_frequency", "routing")}
SEEDS = (0, 1, 2)
QUEUED_LR = 0.002


def read_rows(path: Path, delimiter: str = ",") -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def plots(repo: Path, out: Path, *args: str) -> dict:
    result = json.loads(dvc(repo, "plots", *args, "--json", "-o", str(out)))
    assert "errors" not in result, result.get("errors")
    return result["data"]


def chart(data: dict, name: str) -> tuple[dict, list[dict]]:
    """The Vega-Lite spec of one chart and its data rows."""
    (entry,) = data[name]
    assert entry["type"] == "vega"
    return entry["content"], entry["content"]["data"]["values"]


def assert_page_renders_offline(repo: Path, out: Path, *args: str, revisions: int = 1) -> None:
    """`dvc plots show|diff` as HTML: no script or image from elsewhere, and in a headless browser every chart of
    dvc.yaml drawn by Vega (one <canvas>) and every PNG shown (once per revision)."""
    dvc(repo, "plots", *args, "-o", str(out))
    page = (out / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?https?:""", page)
    dom = rendered_dom(out / "index.html", out)
    assert len(re.findall(r"<canvas[^>]*class=\"marks\"", dom)) == len(CHARTS), dom[-2000:]
    assert len(re.findall(r"<img src=\"static/", dom)) == len(IMAGES) * revisions   # (vega-embed's code has one too)


def queue_seeds(repo: Path) -> list[str]:
    """Queue one experiment per seed (train.lr = QUEUED_LR), run the queue, wait for it; their names."""
    dvc(repo, "exp", "run", "--queue", "-S", f"train.seed={','.join(map(str, SEEDS))}", "-S",
        f"train.lr={QUEUED_LR}")
    dvc(repo, "queue", "start", "-j", "1")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = dvc(repo, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(1)
    assert status.count("Success") == len(SEEDS), status
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    names = [rev["name"] for commit in shown for exp in commit.get("experiments") or [] for rev in exp["revs"]]
    assert len(names) == len(SEEDS), shown
    return names


@pytest.fixture(scope="module")
def seeded(built, tmp_path_factory) -> tuple[Path, list[str]]:
    """A copy of the repro'd repo with three queued seeds run: (repo, experiment names)."""
    repo = copy_repo(built[0], tmp_path_factory.mktemp("seeds") / "project")
    return repo, queue_seeds(repo)


def test_plots_show_draws_each_chart_from_the_files_it_names(built, tmp_path):
    repo = copy_repo(built[0], tmp_path / "project")   # `built` is shared by every worker: DVC runs in a copy
    data = plots(repo, tmp_path / "out", "show")
    assert set(data) == CHARTS | IMAGES
    live = repo / "artifacts/model/live/plots/metrics"
    spec, rows = chart(data, "loss")  # three losses on one chart, each series the TSV DVCLive wrote
    for name in ("total", "base", "sem"):
        series = [(r["step"], r[name]) for r in rows if r["filename::field"] == f"{name}.tsv::{name}"]
        assert series == [(r["step"], r[name]) for r in read_rows(live / "loss" / f"{name}.tsv", "\t")], name
    _, rows = chart(data, "accuracy")  # train accuracy of each branch and val accuracy, on one chart
    for folder, name in (("train", "base_top1"), ("train", "sem_top1"), ("val", "top1"), ("val", "mean_class")):
        series = [(r["step"], r[name]) for r in rows if r["filename::field"] == f"{folder}/{name}.tsv::{name}"]
        assert series == [(r["step"], r[name]) for r in read_rows(live / folder / f"{name}.tsv", "\t")], name
        assert series
    spec, rows = chart(data, "accuracy_by_frequency")  # one series per method, x on a log scale
    assert spec["encoding"]["x"]["scale"]["type"] == "log"
    bins = read_rows(repo / "artifacts/metrics/plots/accuracy_by_frequency.csv")
    for method in ("zero_shot", "zero_shot_library", "base", "semantic", "mdpr"):
        assert [(r["train_count"], r["dvc_inferred_y_value"]) for r in rows if r["field"] == method] == [
            (b["train_count"], b[method]) for b in bins], method
    predictions = read_rows(repo / "artifacts/metrics/predictions.csv")
    for name, (x, y) in {"confusion_classes": ("actual", "predicted"),
                         "confusion_groups": ("actual_group", "predicted_group")}.items():
        spec, rows = chart(data, name)  # DVC's confusion template: counts of (true, predicted) pairs
        assert spec["spec"]["encoding"]["x"]["field"] == x and spec["spec"]["encoding"]["y"]["field"] == y
        assert sorted((r[x], r[y]) for r in rows) == sorted((p[x], p[y]) for p in predictions)
    for name, file, keys in (("accuracy_by_group", "accuracy_by_group.csv", ("group", "method", "accuracy")),
                             ("routing", "routing_by_group.csv", ("group", "dimension", "weight"))):
        _, rows = chart(data, name)
        written = read_rows(repo / "artifacts/metrics/plots" / file)
        assert [tuple(r[k] for k in keys) for r in rows] == [tuple(r[k] for k in keys) for r in written], name
    for image in IMAGES:
        assert (tmp_path / "out" / data[image][0]["url"]).read_bytes()[:4] == b"\x89PNG"
    assert_page_renders_offline(repo, tmp_path / "page", "show")


def test_plots_diff_overlays_two_experiments_on_every_chart(seeded, tmp_path):
    repo, names = seeded
    first, second = names[:2]
    data = plots(repo, tmp_path / "out", "diff", first, second)
    assert set(data) == CHARTS | IMAGES
    for name in CHARTS:
        spec, rows = chart(data, name)
        assert {r["rev"] for r in rows} == {first, second}, name
    _, rows = chart(data, "loss")  # another seed: other numbers on the same chart
    by_rev = {rev: [r["total"] for r in rows if r["rev"] == rev and "total" in r] for rev in (first, second)}
    assert len(by_rev[first]) == len(by_rev[second]) > 0 and by_rev[first] != by_rev[second]
    for image in IMAGES:
        assert sorted(rev for entry in data[image] for rev in entry["revisions"]) == sorted([first, second])
    assert_page_renders_offline(repo, tmp_path / "page", "diff", first, second, revisions=2)


def test_report_experiments_prints_mean_and_std_over_the_three_seeds(seeded):
    repo, _ = seeded
    output = run([str(VENV_BIN / "mdpr"), "report", "--experiments"], repo)
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    runs = [rev["data"] for commit in shown for exp in commit.get("experiments") or [] for rev in exp["revs"]]
    top1 = [r["metrics"]["artifacts/metrics/metrics.json"]["data"]["mdpr"]["top1"] for r in runs]
    assert len(set(top1)) > 1  # the seeds changed the result, so the std is not trivially 0
    groups = output.split("\n\n")
    (queued,) = [g for g in groups if g.startswith(f"train.lr={QUEUED_LR}:")]
    (committed,) = [g for g in groups if g.startswith("train.lr=0.001:")]
    seeds = queued.split("(train.seed ")[1].split(";")[0].split(", ")
    assert f"n = {len(SEEDS)} (train.seed " in queued and sorted(seeds) == [str(s) for s in SEEDS]
    assert "n = 1 (train.seed 0; runs" in committed
    row = next(line for line in queued.splitlines() if line.startswith("MDPR (fused)"))
    assert row.split()[2:5] == [f"{100 * statistics.fmean(top1):.2f}", "±", f"{100 * statistics.stdev(top1):.2f}"]


def test_a_fresh_clone_is_told_to_dvc_pull(built, tmp_path):
    git(tmp_path, "clone", "-q", str(built[0]), "clone")
    clone = tmp_path / "clone"
    assert not (clone / "artifacts/data").exists() and (clone / "dvc.lock").is_file()   # Git holds only .gitignores
    result = run(["bash", "-c", f"{VENV_BIN / 'mdpr'} train; echo status=$?"], clone)
    lines = [line for line in result.splitlines() if line.strip()]   # stdout, then stderr
    assert lines[0] == "status=2" and len(lines) == 2, result
    assert lines[1].startswith("error: ") and "/artifacts/data/classes.json not found" in lines[1]
    assert "dvc.lock records artifacts/data (stage prepare): `dvc pull` fetches it" in lines[1]
    assert "`dvc repro` rebuilds it" in lines[1]
