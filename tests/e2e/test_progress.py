"""Progress on long work goes to stderr: train prints a line per epoch, scoring and text encoding show bars when they
take more than a few seconds; stdout keeps only the summaries and tables."""
import re

from pipeline.core import paths, progress
from stages import embed_library, evaluate, train


def test_train_prints_one_line_per_epoch_with_loss_and_val_accuracy(trained_project, capsys):
    train.run()
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("train: epoch")]
    assert len(lines) == 4, err  # epoch 0 (the untrained head, scored on val) and the 3 trained epochs
    val = r"val top-1 \d\.\d{3}, val mean-class \d\.\d{3}, val routing entropy (\d\.\d{3}) \(\d+ s\)$"
    assert re.match(r"train: epoch 0/3: untrained head, " + val, lines[0]), lines[0]
    for epoch, line in enumerate(lines[1:], 1):
        assert re.match(rf"train: epoch {epoch}/3: loss \d+\.\d{{4}}, train acc base \d\.\d{{3}}, "
                        r"train acc sem \d\.\d{3}, " + val, line), line
    assert "train: epoch" not in out and out.startswith("train: ")
    logged = (paths.LIVE_DIR / "plots" / "metrics" / "val" / "routing_entropy.tsv").read_text().splitlines()[1:]
    printed = [re.search(val, line)[1] for line in lines]  # the DVCLive curve holds what each line printed
    assert [f"{float(row.split()[-1]):.3f}" for row in logged] == printed


def test_long_scoring_and_text_encoding_show_bars_on_stderr_only(trained_project, capsys, monkeypatch):
    evaluate.run()
    embed_library.run()
    quick_out, quick_err = capsys.readouterr()
    assert "it/s" not in quick_err and "img/s" not in quick_err and "text/s" not in quick_err  # tiny: no bars
    monkeypatch.setattr(progress, "PROGRESS_DELAY_S", 0.0)  # as if each took longer than the delay
    evaluate.run()
    embed_library.run()
    out, err = capsys.readouterr()
    assert re.search(r"score: 100%.*\| 30/30 ", err), err
    assert re.search(r"encode texts: 100%.*\| 30/30 ", err), err
    assert out == quick_out  # the table and the summaries, unchanged and without bars
