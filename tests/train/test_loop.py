"""The training loop against a plain PyTorch reference loop, and the per-worker data cache."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import recall_score
from torch.utils.data import DataLoader, TensorDataset

from conftest import SPACES, hpo, write_study
from hpo.spec import load_spec
from hpo.train import device_data, loop, models
from hpo.train.splits import prepare


def config(epochs: int = 4) -> dict:
    cfg = load_spec(SPACES / "cb_focal_beta.yaml").trial_config({})
    cfg["loss"] = {"name": "ce"}
    cfg["train"].update(epochs=epochs, lr=0.05, batch_size=32)
    return cfg


def reference_run(cfg: dict) -> tuple[list[float], float]:
    """The textbook loop: float tensors, a DataLoader, F.cross_entropy; same seeds and batch order."""
    t = cfg["train"]
    s = prepare(cfg["data"])
    x = torch.tensor(s.train.x).float() / 255
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    norm = lambda a: (torch.tensor(a).float() / 255 - mean) / std  # noqa: E731
    torch.manual_seed(t["seed"])
    rng = np.random.default_rng(t["seed"])
    model = models.build("small_cnn", num_classes=10, in_chans=1, **{k: v for k, v in cfg["model"].items() if k != "name"})
    opt = torch.optim.SGD(model.parameters(), lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"],
                          nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t["epochs"])
    ds = TensorDataset(norm(s.train.x), torch.tensor(s.train.y))
    losses = []
    for _ in range(t["epochs"]):
        model.train()
        order = rng.permutation(len(ds)).tolist()
        total = 0.0
        for xb, yb in DataLoader(ds, batch_size=t["batch_size"], sampler=order):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(yb)
        sched.step()
        losses.append(total / len(ds))
    model.eval()
    with torch.no_grad():
        pred = model(norm(s.val.x)).argmax(1).numpy()
    return losses, float(recall_score(s.val.y, pred, average="macro"))


def test_loop_matches_a_plain_reference_loop_on_a_fixed_seed() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same reduction order in both runs
    try:
        cfg = config()
        ours = loop.run(cfg, splits=prepare(cfg["data"]))
        ref_losses, ref_macro = reference_run(cfg)
    finally:
        torch.set_num_threads(threads)
    assert [r["train_loss"] for r in ours["curve"]] == pytest.approx(ref_losses, rel=1e-3)
    assert ours["macro_acc"] == pytest.approx(ref_macro, abs=0.02)
    assert ref_losses[-1] < ref_losses[0]  # it did learn


def test_data_cache_serves_the_second_run_in_a_process() -> None:
    cfg = config(epochs=1)
    device_data._cache.clear()
    loads = device_data.stats["loads"]
    first, second = loop.run(cfg), loop.run(cfg)
    assert (first["data_cached"], second["data_cached"]) == (False, True)
    assert device_data.stats["loads"] == loads + 1
    other = {**cfg, "data": {**cfg["data"], "seed": 1}}
    assert loop.run(other)["data_cached"] is False  # another data spec: a new load, replacing the old


def test_a_run_keeps_float16_val_and_test_logits_in_split_order_and_weights_when_asked() -> None:
    import io

    from safetensors.torch import load

    from hpo.views.artifacts import LOGITS, logits_npz

    cfg = config(epochs=1)
    cfg["train"]["keep"] = "weights"
    out = loop.run(cfg)
    lg = out["logits"]
    assert lg["val"].dtype == np.float16 and lg["val"].shape == (len(lg["y_val"]), 10)
    assert lg["test"].shape == (len(lg["y_test"]), 10)
    # the stored logits are the ones the trial was scored on: their argmax gives its macro accuracy
    recall = recall_score(lg["y_val"], lg["val"].astype(np.float32).argmax(1), average="macro")
    assert recall == pytest.approx(out["macro_acc"], abs=0.02)  # float16 rounding may flip a near tie
    z = np.load(io.BytesIO(logits_npz(lg)))
    assert np.array_equal(z["y_test"], lg["y_test"]) and len(logits_npz(lg)) < 200_000 and LOGITS.endswith(".npz")
    assert "0.0.weight" in load(out["weights"])


def test_a_run_records_its_models_parameter_count_for_constraints() -> None:
    """`n_params`, beside `seconds` in the final metrics (a trial's scalars become its user attributes)."""
    cfg = config(epochs=1)
    out = loop.run(cfg)
    model = models.build("small_cnn", num_classes=10, in_chans=1, **{k: v for k, v in cfg["model"].items() if k != "name"})
    assert out["n_params"] == sum(p.numel() for p in model.parameters()) > 0
    assert isinstance(out["n_params"], int)



def test_each_epochs_report_carries_the_costs_mo_asha_reads_at_a_rung() -> None:
    """Seconds so far (growing) and the parameter count, with every epoch's report."""
    rows: list[dict] = []
    out = loop.run(config(epochs=3), report=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["n_params"] == out["n_params"] for r in rows)
    assert 0 < rows[0]["seconds"] < rows[1]["seconds"] < out["seconds"]


def test_posthoc_tau_is_applied_at_evaluation() -> None:
    from hpo.train.metrics import adjust, evaluate

    cfg = config(epochs=1)
    plain = loop.run(cfg)
    cfg["train"]["posthoc_tau"] = 2.0
    shifted = loop.run(cfg)  # same seed: the same model, other decisions
    lg = shifted["logits"]["val"].astype(np.float32)
    expected = evaluate(shifted["logits"]["y_val"], adjust(lg, shifted["class_counts"], 2.0).argmax(1),
                        shifted["class_counts"])
    assert shifted["macro_acc"] == pytest.approx(expected["macro_acc"], abs=0.02)
    assert np.array_equal(plain["logits"]["val"], shifted["logits"]["val"])


def test_k_fold_trial_reports_the_fold_mean_and_records_each_fold_and_its_spread() -> None:
    cfg = config(epochs=2)
    cfg["data"]["split"].update(folds=3, repeats=1)
    reported: list[dict] = []
    t0 = time.perf_counter()
    final = loop.run_folds(cfg, report=reported.append)
    assert final["seconds"] <= time.perf_counter() - t0  # the folds run side by side: not k times the wall time
    folds = final["fold_values"]
    assert len(folds["minority_f1"]) == 3 and len(set(folds["minority_f1"])) > 1  # tiny folds disagree
    for m in ("minority_f1", "macro_acc"):
        assert final[m] == pytest.approx(np.mean(folds[m]))  # the trial's value is the fold mean
        assert final["fold_std"][m] == pytest.approx(np.std(folds[m])) and final["fold_std"][m] > 0
    assert [r["epoch"] for r in reported] == [1]  # every epoch but the last, as a single-split trial
    from hpo.train.splits import folds as fold_parts

    firsts = [next(loop.training(cfg, part)) for part in fold_parts(cfg["data"], prepare(cfg["data"]))]
    assert reported[0]["minority_f1"] == pytest.approx(np.mean([r["minority_f1"] for r in firsts]))  # MO-ASHA's view
    single = prepare(cfg["data"])
    pool = len(single.train.y) + len(single.val.y)
    assert len(final["logits"]["val"]) == len(final["logits"]["y_val"]) == pool  # out-of-fold logits
    assert len(final["logits"]["test"]) == len(single.test.y)
    assert sum(v["support"] for v in final["per_class"].values()) == pool  # per-class: out of fold


@pytest.mark.parametrize("loss", [{"name": "ldam", "drw_start": 0.5}, {"name": "cb_focal"},
                                  {"name": "weighted_ce"}, {"name": "balanced_softmax"}, {"name": "logit_adjusted"}])
def test_the_loss_tensors_live_on_the_models_device_after_build(loss: dict) -> None:
    """Class weights, margins, offsets and DRW's deferred weights move with the model (`meta`
    stands in for a GPU: no tensor stays behind on the CPU to be copied at every step), and DRW
    switches on that very tensor, so a captured step sees one new weight tensor per switch."""
    cfg = config()
    cfg["loss"] = loss
    cfg["train"]["label_smoothing"] = 0.1
    p = loop.build(cfg, prepare(cfg["data"]), torch.device("meta"))
    tensors = {name: b.device.type for name, b in p.train_loss.named_buffers()}
    assert tensors and set(tensors.values()) == {"meta"}, tensors
    if p.criterion.drw_weight is not None:
        p.criterion.start_epoch(3, 4)
        switched = p.criterion.weight
        p.criterion.start_epoch(3, 4)  # the next epoch puts back the same tensor, not a fresh copy
        assert p.criterion.weight is switched is p.criterion.drw_weight


def test_the_gpu_memory_cap_leaves_room_for_each_trials_context_and_the_data_budget_follows_it() -> None:
    """At `resources.gpu` 1/n the allocator cap is 1/n of the card less one CUDA context (which
    the cap does not count), so n trials and their contexts fit; the default data budget is a
    quarter of that cap, not of the whole card; k folds count k copies of the data."""
    total = 80 * 2**30
    for n in (2, 4, 8):
        cap = loop.memory_fraction(1 / n, total)
        assert cap < 1 / n and n * (cap * total + loop.CONTEXT_MB * 2**20) <= total
    assert loop.memory_fraction(1.0, total) == loop.memory_fraction(0.0, total) == 1.0
    assert loop.memory_fraction(0.25, 2 * 2**30) == 0.125  # a small card keeps half the share
    cap = loop.memory_fraction(0.25, total)
    assert device_data.default_budget_mb(total, cap) == pytest.approx(cap * total / 4 / 2**20)
    splits = prepare(config()["data"])
    mb = sum(p.x.nbytes for p in (splits.train, splits.val, splits.test)) / 2**20
    cpu = torch.device("cpu")
    assert not device_data.keep_on_host(splits, cpu, 1.5 * mb)
    assert device_data.keep_on_host(splits, cpu, 1.5 * mb, copies=2)  # two folds' copies exceed it


def test_an_out_of_memory_epoch_frees_the_graph_model_and_optimiser(tmp_path: Path, monkeypatch) -> None:
    """The graph holds the model, the optimiser and (on CUDA) the pool with the gradients: the
    OOM path drops it with them, after the exception's frames are gone, so emptying the cache
    gives the memory back."""
    import gc
    import weakref

    from hpo.train.device_data import to_device
    from hpo.train.graph_step import GraphStep

    cfg = config(epochs=1)
    splits = prepare(cfg["data"])
    dev = to_device(splits, torch.device("cpu"))
    p = loop.build(cfg, splits, torch.device("cpu"))
    view, _ = loop.views(cfg, dev, p.model)
    p.graph = GraphStep(p.model, p.train_loss, p.opt, dev.train, view, 32, capture=False)
    held = [weakref.ref(x) for x in (p.graph, p.model, p.opt)]
    monkeypatch.setenv("HPO_FAULT", f"oom_once:1:{tmp_path / 'oom'}")
    with pytest.raises(loop.TrialFailure, match="oom"):
        loop._epoch(p, dev, np.arange(len(splits.train.y)), 32, view, 1)
    gc.collect()
    assert [ref() is None for ref in held] == [True, True, True]


def test_under_compile_the_short_last_batch_runs_the_plain_model_not_a_second_compile() -> None:
    """A compiled model meets only full batches: the epoch's short last batch would make
    torch.compile compile the model again for its shape (counted by a real dynamo backend)."""
    compiles = []

    def counting(gm: torch.fx.GraphModule, inputs: list) -> object:
        compiles.append(len(inputs))
        return gm.forward

    cfg = config(epochs=1)
    splits = prepare(cfg["data"])
    dev = device_data.to_device(splits, torch.device("cpu"))
    p = loop.build(cfg, splits, torch.device("cpu"))
    view, _ = loop.views(cfg, dev, p.model)
    torch._dynamo.reset()
    step_model = torch.compile(p.model, backend=counting)
    order = np.arange(len(splits.train.y))
    assert len(order) % 32, "the epoch must end on a short batch"
    loop.train_epoch(step_model, p.train_loss, p.opt, dev.train, order, 32, view, short_model=p.model)
    assert len(compiles) == 1
