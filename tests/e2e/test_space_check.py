"""A features import whose text encoder is at chance: refused by the real `mdpr` (exit 2, one line), and under
`clip.space_check: warn` run to the end with the failed check said by every summary after it.

    .venv/bin/python -m pytest tests/e2e/test_space_check.py -q   # 47 s on 2 cores, 98 s when they were busy:
                                                                   # every stage once and the real mdpr 3 times
"""
from __future__ import annotations

import json

import h5py

from pipeline.core import paths
from tests.helpers.spaces import write_import_without_class_features
from tests.helpers.worlds import inside, run_mdpr

FAILED = "the space check of the imported features FAILED (zero-shot top-1"


def test_a_chance_level_import_is_refused_and_under_warn_every_summary_says_so(tmp_path, capsys):
    from stages import confusion, embed_classes, embed_images, embed_library, evaluate, library, prepare, train

    project = tmp_path / "project"
    project.mkdir()
    write_import_without_class_features(project, text_seed=1)  # clip.seed 0: another text space
    with inside(project):
        prepare.run()
        embed_images.run()
    refused = run_mdpr(["embed-classes"], cwd=project)
    lines = (refused.stdout + refused.stderr).strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: embed_classes: the image features of feats.npz") and \
        "clip.space_check: warn" in lines[0]
    assert not (project / paths.CLASSES_H5).exists()

    write_import_without_class_features(project, text_seed=1, clip={"space_check": "warn"})
    with inside(project):
        embed_classes.run()
        confusion.run()
        library.run()
        capsys.readouterr()
        for stage, name in ((embed_library, "embed_library"), (train, "train"), (evaluate, "evaluate")):
            stage.run()
            said = capsys.readouterr()
            assert f"warning: {name}: {FAILED}" in said.out + said.err, (name, said)
    for h5 in (paths.CLASSES_H5, paths.LIBRARY_H5):
        with h5py.File(project / h5) as handle:
            assert handle.attrs["space_check"].startswith("failed: zero-shot top-1"), h5
    metrics = json.loads((project / paths.METRICS).read_text())
    assert metrics["space_check"].startswith("failed: zero-shot top-1") and "clip.space_check: warn" in \
        metrics["space_check"]
    report = run_mdpr(["report"], cwd=project)
    assert report.returncode == 0 and f"warning: report: {FAILED}" in report.stdout
    assert report.stdout.index("warning:") < report.stdout.index("semantic (router)")
    page = run_mdpr(["report", "--html", "report.html"], cwd=project)
    assert page.returncode == 0, page.stderr
    html = (project / "report.html").read_text()
    assert html.count(f"<p class='warning'>warning: report: {FAILED}") == 3  # the top, above val and test tables
