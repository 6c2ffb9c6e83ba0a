"""The plain-PyTorch core alone: losses against their formulas, metrics against scikit-learn,
long-tail counts, threshold resampling, and a short training run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, recall_score

from hpo.errors import UserError
from hpo.train import data, losses, metrics
from hpo.train.longtail import exp_profile
from hpo.train.rebalance import threshold_indices

COUNTS = [50, 20, 5]


def test_focal_with_gamma_0_is_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(16, 3), torch.randint(0, 3, (16,))
    assert losses.build("focal", COUNTS, gamma=0.0)(logits, y) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    assert losses.build("ce", COUNTS)(logits, y) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)


def test_focal_matches_a_hand_worked_value() -> None:
    # logits (0, ln 3): p_1 = 3/4; focal(gamma=2) = -(1/4)^2 * ln(3/4)
    logits, y = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    expected = -(0.25 ** 2) * math.log(0.75)
    assert float(losses.build("focal", [1, 1], gamma=2.0)(logits, y)) == pytest.approx(expected, rel=1e-6)


def test_cb_focal_weights_are_the_effective_number_normalised_to_k() -> None:
    beta = 0.9
    raw = [(1 - beta) / (1 - beta ** n) for n in COUNTS]
    expected = [w * 3 / sum(raw) for w in raw]
    got = losses.effective_number_weights(COUNTS, beta)
    assert got.tolist() == pytest.approx(expected, rel=1e-6)
    assert float(got.sum()) == pytest.approx(3.0)
    # one sample of class 2: its loss is the focal term times w_2
    logits, y = torch.tensor([[0.2, -0.1, 0.4]]), torch.tensor([2])
    focal = float(losses.build("focal", COUNTS, gamma=1.0)(logits, y))
    assert float(losses.build("cb_focal", COUNTS, beta=beta, gamma=1.0)(logits, y)) == pytest.approx(focal * expected[2], rel=1e-5)


def test_cb_focal_with_beta_0_is_focal() -> None:
    torch.manual_seed(1)
    logits, y = torch.randn(32, 3), torch.randint(0, 3, (32,))
    assert float(losses.build("cb_focal", COUNTS, beta=0.0, gamma=2.0)(logits, y)) == pytest.approx(
        float(losses.build("focal", COUNTS, gamma=2.0)(logits, y)), rel=1e-6)


@pytest.mark.parametrize("name, params", [("ce", {}), ("focal", {"gamma": 2.0}), ("cb_focal", {"beta": 0.9999, "gamma": 2.0})])
@pytest.mark.parametrize("k", [2, 10, 100])
def test_losses_finite_at_huge_logits_for_any_k(name: str, params: dict, k: int) -> None:
    counts = [max(1, 1000 // (i + 1)) for i in range(k)]
    logits = (torch.randn(8, k) * 1e4).requires_grad_()
    y = torch.randint(0, k, (8,))
    loss = losses.build(name, counts, **params)(logits, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_bf16_autocast_is_close_to_float32() -> None:
    torch.manual_seed(2)
    logits, y = torch.randn(64, 10), torch.randint(0, 10, (64,))
    fn = losses.build("cb_focal", list(range(100, 0, -10)), beta=0.999, gamma=2.0)
    full = float(fn(logits, y))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = float(fn(logits.bfloat16(), y))
    assert half == pytest.approx(full, rel=2e-2)


def test_unknown_loss_lists_known_names() -> None:
    with pytest.raises(UserError, match="unknown loss .ldamm.; known: .*cb_focal"):
        losses.build("ldamm", COUNTS)


def test_metrics_match_sklearn_and_a_hand_worked_example() -> None:
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 0]
    m = metrics.evaluate(y_true, y_pred, class_counts=[100, 30, 10])
    # by hand: recalls 3/4, 1/2, 1/2 -> macro 7/12; class 2: P = 1/2, R = 1/2, F1 = 1/2
    assert m["macro_acc"] == pytest.approx(7 / 12)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["minority"] == [1, 2]  # mean count 46.7: classes 1 and 2 are below it
    # class 1: P = 1/2 (pred 1 at idx 3, 4), R = 1/2 -> F1 1/2; minority F1 = (1/2 + 1/2) / 2
    assert m["minority_f1"] == pytest.approx(0.5)
    assert m["g_mean"] == pytest.approx((0.75 * 0.5 * 0.5) ** (1 / 3))
    f1 = f1_score(y_true, y_pred, average=None)
    assert [m["per_class"][str(c)]["f1"] for c in range(3)] == pytest.approx(f1.tolist())
    assert m["macro_acc"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))


def test_minority_override_by_index_or_name() -> None:
    y = [0, 1, 2, 2]
    assert metrics.evaluate(y, y, [10, 10, 1], minority=[0])["minority"] == [0]
    assert metrics.evaluate(y, y, [10, 10, 1], minority=["b"], class_names=["a", "b", "c"])["minority"] == [1]
    with pytest.raises(UserError, match="neither a class index"):
        metrics.evaluate(y, y, [10, 10, 1], minority=[7])


def test_exp_profile_reproduces_cifar10_lt_ratio_100() -> None:
    assert exp_profile(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_digits_lt_split_is_long_tailed_train_and_balanced_val() -> None:
    cfg = {"name": "digits", "seed": 0, "longtail": {"profile": "exp", "ratio": 100},
           "split": {"val": 0.2, "test": 0.2}, "params": {}}
    s = data.prepare(cfg)
    assert s.class_counts[0] / s.class_counts[-1] >= 90 and s.class_counts == sorted(s.class_counts, reverse=True)
    val = np.bincount(s.val.y)
    assert val.min() >= 34 and val.max() <= 38  # stratified from the balanced source
    assert s.train.x.dtype == np.uint8 and s.train.x.shape[1:] == (1, 8, 8)
    again = data.prepare(cfg)
    assert np.array_equal(s.train.y, again.train.y) and np.array_equal(s.train.x, again.train.x)


def test_threshold_resampling_hits_the_threshold_and_sees_every_tail_image() -> None:
    y = np.repeat(np.arange(4), [500, 100, 20, 3])
    rng = np.random.default_rng(0)
    per_epoch = np.array([np.bincount(y[threshold_indices(y, 60, rng)], minlength=4) for _ in range(200)])
    # expected 60 per class; the head (rate 0.12) has binomial noise sd ~7.3, so a 200-epoch mean is within ~1
    assert per_epoch.mean(axis=0) == pytest.approx([60, 60, 60, 60], abs=2.0)
    idx = threshold_indices(y, 60, np.random.default_rng(1))
    tail = set(np.flatnonzero(y == 3))
    assert tail <= set(idx.tolist())  # rate 20 >= 1: every tail image appears, 20 times
    assert np.bincount(idx, minlength=len(y))[sorted(tail)].tolist() == [20, 20, 20]
