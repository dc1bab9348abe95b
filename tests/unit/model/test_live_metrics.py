"""Training metric names, the kept epoch's summary, and top-5 accuracy."""
import torch

from pipeline.model.live_metrics import LIVE_NAMES, kept_summary, live_metrics
from pipeline.model.metrics import top_k_hits, with_top5


def record(epoch: int, scale: float) -> dict:
    return {"epoch": epoch, "loss": 2 * scale, "base": scale, "sem": 0.5 * scale, "train_acc_base": 0.1 * epoch,
            "train_acc_sem": 0.2 * epoch, "lr": 1e-3 / (epoch + 1), "lambda_sem": 0.01 * epoch, "val_top1": 0.3 * epoch,
            "val_top5": 0.9, "val_mean_class": 0.25 * epoch, "val_fusion_weight": 0.5, "val_posthoc_tau": 0.0,
            "val_routing_entropy": 0.75}


def test_losses_sit_under_loss_and_val_scores_under_val():
    names = live_metrics(record(2, 1.0))
    assert names == {"loss/total": 2.0, "loss/base": 1.0, "loss/sem": 0.5, "train/base_top1": 0.2,
                     "train/sem_top1": 0.4, "schedule/lr": 1e-3 / 3, "schedule/sem_weight": 0.02, "val/top1": 0.6,
                     "val/top5": 0.9, "val/mean_class": 0.5, "val/fusion_weight": 0.5, "val/posthoc_tau": 0.0,
                     "val/routing_entropy": 0.75}
    assert all(name.split("/")[0] in ("loss", "train", "val", "schedule") for name in LIVE_NAMES.values())


def test_the_summary_holds_the_kept_epoch_not_the_last():
    history = [{"epoch": 0, "val_top1": 0.1, "val_mean_class": 0.1}, record(1, 3.0), record(2, 2.0), record(3, 1.0)]
    summary = kept_summary(history, {"epoch": 2})
    assert summary["kept_epoch"] == 2 and summary["epochs"] == 3
    assert summary["loss"] == {"total": 4.0, "base": 2.0, "sem": 1.0}
    assert summary["val"]["mean_class"] == 0.5 and summary["val"]["top1"] == 0.6
    assert kept_summary(history, {"epoch": 0}) == {"kept_epoch": 0, "epochs": 3, "val": {"top1": 0.1,
                                                                                       "mean_class": 0.1}}


def test_top5_counts_the_true_class_among_the_five_highest_logits():
    logits = torch.tensor([[7.0, 6, 5, 4, 3, 2, 1],      # true class 4: 5th highest -> hit
                           [7.0, 6, 5, 4, 3, 2, 1],      # true class 5: 6th -> miss
                           [1.0, 2, 3, 4, 5, 6, 7]])     # true class 0: last -> miss
    hits = top_k_hits(logits, [4, 5, 0])
    assert hits.tolist() == [True, False, False]
    assert top_k_hits(logits[:, :3], [2, 2, 0]).tolist() == [True, True, True]    # k capped at C = 3
    report = with_top5({"top1": 0.25, "mean_class": 0.2, "few": 0.1}, hits)
    assert list(report) == ["top1", "top5", "mean_class", "few"] and report["top5"] == 1 / 3
