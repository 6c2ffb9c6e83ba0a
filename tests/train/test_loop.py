"""The training loop against a plain PyTorch reference loop, and the per-worker data cache."""
from __future__ import annotations

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


@pytest.mark.e2e
def test_a_reused_ray_worker_loads_the_data_once_for_two_trials(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "cache", train={"epochs": 1}, budget={"n_trials": 2, "max_concurrent": 1})
    url = f"sqlite:///{tmp_path / 'c.db'}"
    r = hpo("launch", "--study", "cache", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    t0, t1 = optuna.load_study(study_name="cache", storage=url).trials
    assert t0.user_attrs["worker_pid"] == t1.user_attrs["worker_pid"]  # one reused worker
    assert (t0.user_attrs["data_cached"], t1.user_attrs["data_cached"]) == (False, True)
    assert t0.user_attrs["data_loads"] == t1.user_attrs["data_loads"] == 1


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
    final = loop.run_folds(cfg, report=reported.append)
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
