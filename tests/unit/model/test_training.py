"""`fit` and the inference pass on a synthetic feature-level long-tailed problem.

The problem (fixed seeds): C = 20 classes with unit-norm centres in d = 32; training counts follow the exponential
profile 500 * 100^(-i/19) (500 down to 5, 6 few-shot classes); image features are centres plus heavy Gaussian
noise (norm ~2, so classes overlap); class-name embeddings are confused, each an equal mix of its own centre and
another class's (zero-shot accuracy ~0.3); each class's 5 descriptions are its centre plus small noise (so they
carry the class information the names lack). The test set is balanced, 200 images per class.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
from pipeline.core.errors import UserError
from pipeline.data.manifest import groups_of
from pipeline.model.inference import branch_logits, infer
from pipeline.model.losses import class_log_prior
from pipeline.model.mdpr import MDPRModel, fuse
from pipeline.model.metrics import accuracy_report, overall_accuracy
from pipeline.model.selection import FUSION_GRID, POSTHOC_TAU_GRID, choose_fusion, describe_kept
from pipeline.model.training import fit

C, D, V = 20, 32, 5


def long_tailed_problem(seed=0, n_max=500, imbalance=100, noise=2.0, test_per_class=200):
    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor([math.floor(n_max * imbalance ** (-i / (C - 1))) for i in range(C)])  # (C,)
    centres = F.normalize(torch.randn(C, D, generator=gen), dim=-1)  # (C, d)

    def sample(per_class):
        labels = torch.repeat_interleave(torch.arange(C), per_class)
        feats = centres[labels] + noise * torch.randn(len(labels), D, generator=gen) / math.sqrt(D)
        return F.normalize(feats, dim=-1), labels

    train, test = sample(counts), sample(torch.full((C,), test_per_class))
    confused_with = torch.arange(C).roll(C // 2)  # head class i <-> tail class i + 10
    names = centres + centres[confused_with] + 0.4 * torch.randn(C, D, generator=gen) / math.sqrt(D)
    library = centres[:, None] + 0.4 * torch.randn(C, V, D, generator=gen) / math.sqrt(D)  # (C, V, d)
    return counts, train, test, F.normalize(names, dim=-1), F.normalize(library, dim=-1)


PROBLEM = long_tailed_problem()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread avoids OpenMP oversubscription (10x slower on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train_and_test(base_loss: str, router_init: str = "identity") -> dict:
    counts, (train_feats, train_labels), (test_feats, test_labels), names, library = PROBLEM
    model = MDPRModel(names, library, None, ModelParams(heads=4), seed=0, router_init=router_init)
    params = TrainParams(epochs=40, lr=1e-3, batch_size=128, seed=0, base_loss=base_loss)
    fit(model, train_feats, train_labels, counts, params)
    out = branch_logits(model, test_feats)
    branches = {"base": out["base"], "sem": out["sem"], "fused": fuse(out["base"], out["sem"], 0.5)}
    groups = groups_of(counts, 100, 20)
    return {name: accuracy_report(logits.argmax(-1), test_labels, groups) for name, logits in branches.items()}


@pytest.fixture(scope="module")
def results():
    return {"la": _train_and_test("la"), "ce": _train_and_test("ce"),
            "la_pytorch_init": _train_and_test("la", "pytorch")}


def test_problem_is_long_tailed_and_names_are_weak():
    counts, _, (test_feats, test_labels), names, library = PROBLEM
    assert counts[0] == 500 and counts[-1] == 5 and (counts < 20).sum() == 6
    zero_shot = accuracy_report((test_feats @ names.T).argmax(-1), test_labels, groups_of(counts, 100, 20))
    with_descriptions = accuracy_report((test_feats @ library.mean(1).T).argmax(-1), test_labels,
                                        groups_of(counts, 100, 20))
    assert zero_shot["few"] < 0.45 and with_descriptions["few"] > 0.7


def test_fused_beats_base_branch_on_few_shot_classes(results):
    # seen: base few 0.623, sem 0.707, fused 0.673 (data seeds 1, 2: +0.061, +0.055)
    assert results["la"]["fused"]["few"] > results["la"]["base"]["few"] + 0.03


def test_logit_adjusted_base_loss_beats_plain_ce_on_few_shot_classes(results):
    # seen (base branch, few): la 0.623, ce 0.555 (data seeds 1, 2: +0.044, +0.084)
    assert results["la"]["base"]["few"] > results["ce"]["base"]["few"] + 0.03
    assert results["la"]["base"]["many"] < results["ce"]["base"]["many"]  # the head pays for it


def test_identity_router_init_transfers_descriptions_to_few_shot_classes(results):
    # seen (semantic branch, few): identity 0.707, pytorch 0.529 (data seeds 1, 2: 0.665 vs 0.374, 0.712 vs 0.471)
    assert results["la"]["sem"]["few"] > results["la_pytorch_init"]["sem"]["few"] + 0.1


def _small_problem():
    counts, (feats, labels), (val_feats, val_labels), names, library = long_tailed_problem(
        n_max=60, imbalance=10, test_per_class=5)
    return counts, feats, labels, (val_feats, val_labels), names, library


def _small_fit(params=TrainParams(epochs=3, lr=3e-3, batch_size=32, seed=7), feats=None, with_val=True,
               fusion=EvaluateParams(), with_kept=False, **model_kw):
    counts, train_feats, labels, val, names, library = _small_problem()
    model = MDPRModel(names, library, None, ModelParams(heads=4, **model_kw), seed=1)
    state, history, kept = fit(model, train_feats if feats is None else feats, labels, counts, params,
                               val=val if with_val else None, fusion=fusion)
    return (model, state, history, kept) if with_kept else (model, state, history)


def test_same_seed_gives_identical_state_and_history():
    params = TrainParams(epochs=3, lr=3e-3, batch_size=32, seed=7, lambda_pa=0.1, lambda_ka=0.1)
    _, state_a, history_a = _small_fit(params, adapter=True)
    _, state_b, history_b = _small_fit(params, adapter=True)
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)
    assert history_a == history_b
    _, _, history_c = _small_fit(TrainParams(epochs=3, lr=3e-3, batch_size=32, seed=8, lambda_pa=0.1, lambda_ka=0.1),
                                 adapter=True)
    # another seed draws other batches (the kept epoch may be the untrained epoch 0 for both: compare the losses)
    assert [h["loss"] for h in history_a[1:]] != [h["loss"] for h in history_c[1:]]


def test_history_records_losses_accuracies_and_cosine_schedule():
    params = TrainParams(epochs=3, lr=3e-3, batch_size=32, seed=7, lambda_pa=0.1)
    _, _, history = _small_fit(params)
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]  # epoch 0: the untrained head, scored on val only
    val = {"val_top1", "val_top5", "val_mean_class", "val_fusion_weight", "val_posthoc_tau"}
    assert set(history[0]) == {"epoch"} | val                    # the fused prediction's val report, top5 too
    expected = {"loss", "base", "sem", "pa", "lambda_sem", "train_acc_base", "train_acc_sem", "lr"} | val
    assert expected <= set(history[1])
    assert history[1]["lr"] == pytest.approx(3e-3)  # the first epoch trains at the full rate
    assert history[1]["lr"] > history[2]["lr"] > history[3]["lr"] > 1e-6
    assert history[-1]["loss"] < history[1]["loss"]


def test_validation_selects_the_best_epoch_and_model_holds_it():
    counts, _, _, (val_feats, val_labels), *_ = _small_problem()
    model, state, history = _small_fit(TrainParams(epochs=6, lr=3e-2, batch_size=32, seed=7))
    best = max(h["val_mean_class"] for h in history)
    out = branch_logits(model, val_feats)
    report = accuracy_report(fuse(out["base"], out["sem"], 0.5).argmax(-1), val_labels, groups_of(counts, 100, 20))
    assert report["mean_class"] == pytest.approx(best)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_training_that_only_hurts_on_val_keeps_the_untrained_head():
    counts, _, _, (val_feats, val_labels), names, library = _small_problem()
    untrained = MDPRModel(names, library, None, ModelParams(heads=4), seed=1)
    model, state, history, kept = _small_fit(TrainParams(epochs=3, lr=3.0, batch_size=32, seed=7), with_kept=True)
    assert all(h["val_mean_class"] < history[0]["val_mean_class"] for h in history[1:])  # lr 3 wrecks the head
    assert kept["epoch"] == 0 and kept["val_mean_class"] == history[0]["val_mean_class"]
    assert all(torch.equal(v, untrained.state_dict()[k]) for k, v in model.state_dict().items())
    assert "no trained epoch beat the untrained head" in describe_kept(kept)


def test_a_trained_epoch_wins_a_tie_with_the_untrained_head():
    model, state, history, kept = _small_fit(TrainParams(epochs=2, lr=1e-12, batch_size=32, seed=7),
                                             with_kept=True)
    assert history[0]["val_mean_class"] == history[1]["val_mean_class"] == history[2]["val_mean_class"]
    assert kept["epoch"] == 1


def test_without_validation_the_last_epoch_is_kept_and_auto_is_refused():
    model, state, history, kept = _small_fit(with_val=False, with_kept=True)
    assert "val_mean_class" not in history[-1] and len(history) == 3
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert kept == {"epoch": 3, "epoch_from": "last epoch (no val split)", "fusion_weight": 0.5,
                    "fusion_weight_from": "params", "posthoc_tau": 0.0, "posthoc_tau_from": "params"}
    with pytest.raises(UserError, match="evaluate.posthoc_tau = auto chooses on the val split"):
        _small_fit(with_val=False, fusion=EvaluateParams(posthoc_tau="auto"))


def test_epoch_selection_uses_the_fusion_weight_the_params_name():
    counts, _, _, (val_feats, val_labels), *_ = _small_problem()
    params = TrainParams(epochs=6, lr=3e-2, batch_size=32, seed=7)
    model, _, history, kept = _small_fit(params, fusion=EvaluateParams(fusion_weight=1.0), with_kept=True)
    base_only = overall_accuracy(branch_logits(model, val_feats)["base"].argmax(-1), val_labels, len(counts))
    assert kept["val_mean_class"] == pytest.approx(base_only["mean_class"])  # w = 1: the base branch alone
    assert kept["val_mean_class"] == max(h["val_mean_class"] for h in history)
    assert [h["val_fusion_weight"] for h in history] == [1.0] * 7


def test_auto_fusion_is_chosen_on_val_at_every_epoch_and_kept_with_its_epoch():
    counts, _, _, (val_feats, val_labels), *_ = _small_problem()
    params = TrainParams(epochs=6, lr=3e-2, batch_size=32, seed=7)
    fusion = EvaluateParams(fusion_weight="auto", posthoc_tau="auto")
    model, _, history, kept = _small_fit(params, fusion=fusion, with_kept=True)
    out = branch_logits(model, val_feats)
    choice = choose_fusion(out["base"], out["sem"], val_labels, counts, fusion)
    assert (kept["fusion_weight"], kept["posthoc_tau"]) == (choice.fusion_weight, choice.posthoc_tau)
    assert kept["fusion_weight_from"] == kept["posthoc_tau_from"] == kept["epoch_from"] == "val"
    best = max(history, key=lambda h: h["val_mean_class"])
    assert kept["epoch"] == best["epoch"] and kept["val_mean_class"] == choice.report["mean_class"]
    for weight, tau in [(w, t) for w in FUSION_GRID for t in POSTHOC_TAU_GRID]:  # nothing on the grid does better
        pred = fuse(out["base"], out["sem"], weight, tau, class_log_prior(counts)).argmax(-1)
        assert overall_accuracy(pred, val_labels, len(counts))["mean_class"] <= choice.report["mean_class"] + 1e-12


def test_float16_features_and_cached_views_train():
    counts, feats, labels, *_ = _small_problem()
    half = feats.half()
    _, _, history = _small_fit(feats=half, with_val=False)
    assert half.dtype == torch.float16 and math.isfinite(history[-1]["loss"])
    views = torch.stack([feats, F.normalize(feats + 0.1 * torch.randn_like(feats), dim=-1)], 1)  # (N, 2, d)
    _, _, history = _small_fit(feats=views, with_val=False)
    assert math.isfinite(history[-1]["loss"])


def test_inference_batches_agree_and_give_routing_weights():
    model, _, _ = _small_fit(with_val=False)
    _, feats, *_ = _small_problem()
    small, whole = branch_logits(model, feats, batch_size=7), branch_logits(model, feats, 10_000)
    assert set(whole) == {"base", "sem"}
    torch.testing.assert_close(small["base"], whole["base"])
    torch.testing.assert_close(small["sem"], whole["sem"])
    assert small["base"].dtype == torch.float32 and small["base"].device.type == "cpu"
    batches = list(infer(model, feats, batch_size=7))
    assert [rows.start for rows, _ in batches] == list(range(0, len(feats), 7))
    assert batches[0][1]["weights"].shape == (7, C, V)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_training_tracks_cpu():
    params = TrainParams(epochs=3, lr=3e-3, batch_size=32, seed=7, lambda_pa=0.1, lambda_ka=0.1)
    counts, feats, labels, val, names, library = _small_problem()
    histories = []
    for device in ("cpu", "cuda"):
        model = MDPRModel(names, library.half(), None, ModelParams(heads=4), seed=1)
        _, history, _ = fit(model, feats.half(), labels, counts, params, val=val, device=device)
        histories.append(history)
        assert next(model.parameters()).device.type == device
    cpu, cuda = histories
    assert all(math.isfinite(h["loss"]) for h in cuda)
    assert abs(cuda[-1]["loss"] - cpu[-1]["loss"]) < 0.1 * cpu[-1]["loss"]
    assert abs(cuda[-1]["val_mean_class"] - cpu[-1]["val_mean_class"]) < 0.1
