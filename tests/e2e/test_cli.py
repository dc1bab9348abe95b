"""The `mdpr` console script: commands listed, user errors as one line with exit status 2 and no output written."""
import json
import os
import subprocess
import sys
from importlib import import_module, metadata

import pytest

from pipeline.core import paths
from tests.helpers.worlds import REPO, mdpr_in_process, run_mdpr, write_params


def test_help_lists_every_stage_in_pipeline_order(tmp_path):
    result = run_mdpr(["--help"], tmp_path)
    assert result.returncode == 0
    listing = result.stdout.split("Commands:\n", 1)[1].splitlines()
    commands = {line.split()[0]: line.split(None, 1)[1] for line in listing if line.startswith("  ")}
    stages = ("prepare", "embed-images", "embed-classes", "confusion", "library", "embed-library", "train",
              "evaluate")
    assert list(commands)[:len(stages)] == list(stages)
    assert {"report", "predict", "preset"} <= set(commands)
    for name in stages:              # each stage's help is its module docstring's first line (click shortens it)
        first_line = import_module(f"stages.{name.replace('-', '_')}").__doc__.splitlines()[0]
        assert first_line.startswith(commands[name].removesuffix("...")), name


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("overrides, command, fragments", [
    ({"train": {"lr": -1.0}}, "train", ["train.lr = -1.0 is out of range"]),
    ({"evaluate": {"fusion_weight": 2}}, "evaluate", ["evaluate.fusion_weight"]),
    ({"dataset": {"imbalance_factor": 0.5}}, "prepare", ["dataset.imbalance_factor"]),
    ({"model": {"heads": 0}}, "train", ["model.heads = 0"]),
    ({"model": {"heads": 5}}, "train", ["model.heads = 5 does not divide the feature width 64"]),
    ({"train": {"lrate": 0.1}}, "train", ["unknown key train.lrate", "allowed keys: epochs"]),
    ({"clip": {"precision": 16}}, "embed-images", ["clip.precision = 16 is not allowed"]),
    ({"clip": {"precision": "fp16"}}, "embed-classes", ["clip.precision = fp16 needs a CUDA GPU", "fp32"]),
])
def test_bad_params_fail_before_any_output(trained_project, overrides, command, fragments):
    """In this process (the command's code, exit status and stderr; the console script's own process is tested by
    test_truncated_cache_is_one_line, test_missing_input_names_the_stage_to_run and tests/e2e/test_bad_inputs.py)."""
    outputs = {p: p.read_bytes() for p in (paths.CHECKPOINT, paths.METRICS, paths.IMAGES_H5, paths.MANIFEST)}
    write_params(trained_project, overrides)
    _assert_one_line_error(mdpr_in_process([command], trained_project), *fragments)
    assert all(p.read_bytes() == before for p, before in outputs.items())


def test_truncated_cache_is_one_line(trained_project):
    paths.LIBRARY_H5.write_bytes(paths.LIBRARY_H5.read_bytes()[:500])
    metrics = paths.METRICS.read_bytes()
    _assert_one_line_error(run_mdpr(["evaluate"], trained_project), "library.h5 is truncated",
                           "mdpr embed-library")
    assert paths.METRICS.read_bytes() == metrics


def test_an_unreadable_image_to_predict_is_one_line(trained_project):
    (trained_project / "broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    image = paths.ARTIFACTS / "data/images/test/00_0000.png"
    done = run_mdpr(["predict", str(image), "broken.jpg"], cwd=trained_project)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: image broken.jpg: ") and "--skip-unreadable" in done.stderr
    assert done.stdout == ""


def test_missing_input_names_the_stage_to_run(tmp_path):
    write_params(tmp_path)
    result = run_mdpr(["embed-classes"], tmp_path)
    _assert_one_line_error(result, f"{tmp_path}/artifacts/data/classes.json not found", "mdpr prepare")
    assert "dvc pull" not in result.stderr          # not a DVC project: no DVC hint (tests/e2e/test_results.py)


def test_version_names_mdpr_and_what_it_runs_on(tmp_path):
    result = run_mdpr(["--version"], tmp_path)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
    line = result.stdout.strip()
    assert line.startswith(f"mdpr {metadata.version('mdpr')} (torch {metadata.version('torch')}, ")
    assert f"dvc {metadata.version('dvc')}" in line and "Python 3." in line


def test_shell_completion_as_the_readme_documents_it(tmp_path):
    script = run_mdpr([], tmp_path, env={"_MDPR_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "complete -o nosort -F _mdpr_completion mdpr" in script.stdout
    for words, cword, expected in (("mdpr rep", "1", "plain,report"), ("mdpr report --ht", "2", "plain,--html")):
        result = run_mdpr([], tmp_path, env={"_MDPR_COMPLETE": "bash_complete", "COMP_WORDS": words,
                                            "COMP_CWORD": cword})
        assert result.stdout.split() == [expected], result.stdout


def test_every_report_option_has_help(tmp_path):
    result = run_mdpr(["report", "--help"], tmp_path)
    assert result.returncode == 0
    options = result.stdout.split("Options:\n", 1)[1]
    for option in ("--metrics PATH", "--html FILE", "--experiments", "--split", "--over KEY", "--params"):
        described = options.split(option, 1)[1].split("\n  -", 1)[0]
        assert len(described.split()) >= 3, (option, described)


@pytest.mark.parametrize("args, fragments", [
    (["trian"], ["error: mdpr: No such command 'trian'. Did you mean 'train'?", "`mdpr --help`"]),
    (["train", "--parms", "x.yaml"], ["error: mdpr train: No such option '--parms'", "`mdpr train --help`"]),
    (["predict"], ["error: mdpr predict: Missing argument 'PATH...'"]),
    (["predict", "a.png", "--top-k", "0"], ["error: mdpr predict: Invalid value for '--top-k'"]),
    (["report", "--metrics"], ["Option '--metrics' requires an argument"]),
])
def test_clicks_own_usage_errors_are_one_error_line_too(tmp_path, args, fragments):
    result = run_mdpr(args, tmp_path)
    _assert_one_line_error(result, *fragments)
    assert "Usage:" not in result.stderr and "Error:" not in result.stderr


def test_report_prints_the_numbers_of_metrics_json(trained_project):
    result = run_mdpr(["report"], trained_project)
    assert result.returncode == 0
    metrics = json.loads(paths.METRICS.read_text())
    val, test = result.stdout.split("test split:")
    assert val.startswith("val split:")
    assert "kept epoch" in test and "fusion weight 0.5 (params)" in test
    _assert_table_shows(val.removeprefix("val split:").strip().splitlines(), metrics["val"])
    _assert_table_shows(test.strip().splitlines(), metrics)
    for text, block in ((val, metrics["val"]["routing"]), (test, metrics["routing"])):
        assert (f"routing (true class): entropy {block['entropy']:.3f} (1 = flat), top weight "
                f"{block['top_weight']:.3f}, effective descriptions {block['effective_descriptions']:.2f}, image "
                f"dependence (std) {block['image_std']['mean']:.3f}") in text
        assert "routing per dimension: " + ", ".join(f"{d} {w:.3f}" for d, w in block["dimensions"]["all"].items()) \
            in text


def _assert_table_shows(lines: list[str], metrics: dict) -> None:
    """Every cell of a printed results table equals the metric it names, as a percentage."""
    header, _rule, *rows = lines
    columns = header.split()[1:]
    assert columns == ["top1", "top5", "mean_class", "many", "medium", "few"]
    labels = {"zero-shot CLIP": "zero_shot", "zero-shot + library": "zero_shot_library", "base (prompts)": "base",
              "semantic (router)": "semantic", "MDPR (fused)": "mdpr"}
    printed = {}
    for row in rows:
        label = next((label for label in labels if row.startswith(label)), None)
        if label is None:
            break  # the table ends; what training kept follows
        printed[labels[label]] = dict(zip(columns, row[len(label):].split()))
    assert list(printed) == list(labels.values())
    for method, cells in printed.items():
        for column, cell in cells.items():
            assert cell == f"{100 * metrics[method][column]:.2f}%", (method, column, cell)


HEAVY = ("torch", "open_clip", "dvc", "h5py", "pandas", "numpy", "matplotlib")
"""What `mdpr --help`, `--version`, a command's help and tab completion must not import (seconds of start-up)."""


def test_help_version_and_completion_import_nothing_heavy(tmp_path):
    """Renders every help page, the version and a completion in one process, then reads sys.modules."""
    probe = ("import sys\n"
             "from click.testing import CliRunner\n"
             "from stages.cli import COMMANDS, STAGE_COMMANDS, main\n"
             "runner = CliRunner()\n"
             "for args in (['--help'], ['--version'], *([name, '--help'] for name in (*STAGE_COMMANDS, *COMMANDS))):\n"
             "    result = runner.invoke(main, args, standalone_mode=False)\n"
             "    assert result.exit_code == 0, (args, result.output)\n"
             "completion = runner.invoke(main, [], env={'_MDPR_COMPLETE': 'bash_complete', 'COMP_WORDS': 'mdpr ',\n"
             "                                          'COMP_CWORD': '1'}, prog_name='mdpr')\n"
             "assert 'plain,train' in completion.output, completion.output\n"
             f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported at start-up: {result.stdout.strip()}"


def test_library_token_counting_loads_no_more_of_open_clip_than_its_tokenizer():
    """In a fresh process (as `mdpr library` starts; pipeline/library/descriptions.py): the counts equal open_clip's
    own tokenizer's, and the package __init__ (torchvision, timm, torch._dynamo: ~3 s) has not run."""
    texts = ["A Tiger: orange fur, black stripes!", "café noir, crème", "", " ".join(["word"] * 90)]
    probe = ("import json, sys\n"
             "from pipeline.library.descriptions import count_clip_tokens\n"
             f"counts = [count_clip_tokens(t) for t in {texts!r}]\n"
             "print(json.dumps([counts, sorted(m for m in ('open_clip', 'torchvision', 'timm') if m in sys.modules)]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    counts, loaded = json.loads(result.stdout)
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer()
    assert counts == [len(tokenizer.encode(text)) + 2 for text in texts]
    assert loaded == []


def test_every_listed_command_resolves_and_shows_its_help(tmp_path):
    listing = run_mdpr(["--help"], tmp_path).stdout.split("Commands:\n", 1)[1]
    names = [line.split()[0] for line in listing.splitlines() if line.startswith("  ")]
    from stages.cli import COMMANDS, STAGE_COMMANDS
    assert names == [*STAGE_COMMANDS, *COMMANDS]
    for name in names:
        result = run_mdpr([name, "--help"], tmp_path)
        assert result.returncode == 0 and f"Usage: mdpr {name}" in result.stdout, (name, result.stderr)
