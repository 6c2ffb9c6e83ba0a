"""Every loss against values worked out by hand from its formula, the limits that must hold,
and numerical robustness (huge logits, bf16 autocast, any K, CPU and CUDA where present)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hpo.errors import UserError
from hpo.train import losses, models

COUNTS = [50, 20, 5]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ALL = [("ce", {}), ("weighted_ce", {"weighting": "ins"}), ("weighted_ce", {"weighting": "isns"}),
       ("weighted_ce", {"weighting": "ens", "beta": 0.999}), ("focal", {"gamma": 2.0}),
       ("cb_focal", {"beta": 0.9999, "gamma": 2.0}), ("cb_focal", {"beta": 0.99, "gamma": 1.0, "form": "sigmoid"}),
       ("ldam", {"C": 0.5, "s": 30.0}), ("ldam", {"C": -0.3, "s": 30.0}), ("recall", {}),
       ("balanced_softmax", {}), ("logit_adjusted", {"tau": 1.5}),
       ("focal", {"gamma": 2.0, "drw_start": 0.0, "drw_beta": 0.999}), ("poly1", {"epsilon": 2.0})]


def batch(k: int = 3, n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g), torch.randint(0, k, (n,), generator=g)


# ---- limits ----------------------------------------------------------------------------------

def test_focal_with_gamma_0_is_cross_entropy() -> None:
    logits, y = batch()
    ce = float(F.cross_entropy(logits, y))
    assert float(losses.build("focal", COUNTS, gamma=0.0)(logits, y)) == pytest.approx(ce, rel=1e-6)
    assert float(losses.build("ce", COUNTS)(logits, y)) == pytest.approx(ce, rel=1e-6)


def test_cb_focal_with_beta_0_is_focal() -> None:
    logits, y = batch(seed=1)
    assert float(losses.build("cb_focal", COUNTS, beta=0.0, gamma=2.0)(logits, y)) == pytest.approx(
        float(losses.build("focal", COUNTS, gamma=2.0)(logits, y)), rel=1e-6)


@pytest.mark.parametrize("reduction", ["weighted_mean", "mean"])
def test_cb_focal_is_focal_times_its_constant_class_weights(reduction: str) -> None:
    logits, y = batch(seed=2)
    w = losses.effective_number_weights(COUNTS, 0.99)[y]
    per = losses.focal_term(logits, y, 1.5)
    expected = (per * w).sum() / w.sum() if reduction == "weighted_mean" else (per * w).mean()
    got = losses.build("cb_focal", COUNTS, beta=0.99, gamma=1.5, reduction=reduction)(logits, y)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_ldam_with_c_0_and_s_1_on_a_plain_head_is_cross_entropy() -> None:
    logits, y = batch(seed=3)
    assert float(losses.build("ldam", COUNTS, C=0.0, s=1.0)(logits, y)) == pytest.approx(
        float(F.cross_entropy(logits, y)), rel=1e-6)


def test_balanced_softmax_with_equal_counts_is_cross_entropy() -> None:
    logits, y = batch(seed=4)
    assert float(losses.build("balanced_softmax", [7, 7, 7])(logits, y)) == pytest.approx(
        float(F.cross_entropy(logits, y)), rel=1e-6)


def test_logit_adjusted_with_tau_1_is_balanced_softmax() -> None:
    logits, y = batch(seed=5)
    assert float(losses.build("logit_adjusted", COUNTS, tau=1.0)(logits, y)) == pytest.approx(
        float(losses.build("balanced_softmax", COUNTS)(logits, y)), rel=1e-6)


# ---- hand-worked values ------------------------------------------------------------------------

def test_focal_hand_worked() -> None:
    # logits (0, ln 3): p_1 = 3/4; focal(gamma=2) = -(1/4)^2 ln(3/4)
    logits, y = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    assert float(losses.build("focal", [1, 1], gamma=2.0)(logits, y)) == pytest.approx(-(0.25 ** 2) * math.log(0.75), rel=1e-6)


@pytest.mark.parametrize("weighting, raw", [
    ("ins", [1 / 50, 1 / 20, 1 / 5]),
    ("isns", [50 ** -0.5, 20 ** -0.5, 5 ** -0.5]),
    ("ens", [(1 - 0.9) / (1 - 0.9 ** 50), (1 - 0.9) / (1 - 0.9 ** 20), (1 - 0.9) / (1 - 0.9 ** 5)]),
])
def test_weighted_ce_weights_hand_worked(weighting: str, raw: list[float]) -> None:
    w = [r * 3 / sum(raw) for r in raw]  # normalised to sum to K = 3
    # sample 0: p_2 = 1/5, CE ln 5; sample 1: p_0 = 1/2, CE ln 2
    logits, y = torch.tensor([[0.0, math.log(3.0), 0.0], [0.0, 0.0, -1e4]]), torch.tensor([2, 0])
    total = w[2] * math.log(5.0) + w[0] * math.log(2.0)
    fn = losses.build("weighted_ce", COUNTS, weighting=weighting, beta=0.9)
    assert float(fn(logits, y)) == pytest.approx(total / (w[2] + w[0]), rel=1e-6)  # weighted_mean
    fn = losses.build("weighted_ce", COUNTS, weighting=weighting, beta=0.9, reduction="mean")
    assert float(fn(logits, y)) == pytest.approx(total / 2, rel=1e-6)


def test_ldam_margins_hand_worked() -> None:
    # margins C * n^-1/4 / max(n^-1/4): class 1 (n=20) gets 0.5 * (5/20)^(1/4) = 0.5 / sqrt(2)
    logits, y = torch.tensor([[0.3, 0.2, -0.1]]), torch.tensor([1])
    m = 0.5 * (5 / 20) ** 0.25
    s = 10.0
    z = [s * 0.3, s * (0.2 - m), s * -0.1]
    expected = -(z[1] - math.log(sum(math.exp(v) for v in z)))
    assert float(losses.build("ldam", COUNTS, C=0.5, s=s)(logits, y)) == pytest.approx(expected, rel=1e-6)


def test_ldam_negative_c_widens_the_target_logit() -> None:
    logits, y = batch(seed=6)
    assert float(losses.build("ldam", COUNTS, C=-0.5, s=1.0)(logits, y)) < float(F.cross_entropy(logits, y))


def test_recall_loss_hand_worked() -> None:
    # class 0: 2 samples, 1 wrong -> weight 1/2; class 1: 1 sample, right -> weight 0; class 2 absent
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 3.0, 0.0]])
    y = torch.tensor([0, 0, 1])
    ce = F.cross_entropy(logits, y, reduction="none")
    expected = (0.5 * ce[0] + 0.5 * ce[1] + 0.0 * ce[2]) / 3
    assert float(losses.build("recall", COUNTS)(logits, y)) == pytest.approx(float(expected), rel=1e-6)


def test_balanced_softmax_hand_worked() -> None:
    logits, y = torch.zeros(1, 3), torch.tensor([2])  # softmax over log n: p_2 = 5 / 75
    assert float(losses.build("balanced_softmax", COUNTS)(logits, y)) == pytest.approx(-math.log(5 / 75), rel=1e-6)


def test_sigmoid_cb_focal_hand_worked() -> None:
    # gamma 0: sum over classes of binary CE on one-hot labels, times w_y
    logits, y = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([0])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    bce = -math.log(sig(0.5)) - math.log(1 - sig(-1.0)) - math.log(1 - sig(2.0))
    w = losses.effective_number_weights(COUNTS, 0.9)[0]
    got = float(losses.build("cb_focal", COUNTS, beta=0.9, gamma=0.0, form="sigmoid", reduction="mean")(logits, y))
    assert got == pytest.approx(float(w) * bce, rel=1e-5)
    # one sample: the weighted mean divides its weight out again
    got = float(losses.build("cb_focal", COUNTS, beta=0.9, gamma=0.0, form="sigmoid")(logits, y))
    assert got == pytest.approx(bce, rel=1e-5)


@pytest.mark.parametrize("k, bias", [(2, 0.0), (10, -math.log(9)), (100, -math.log(99))])
def test_sigmoid_cb_focal_head_bias_starts_every_class_at_prior_1_over_k(k: int, bias: float) -> None:
    # Cui et al.'s code: b = -log(K - 1), i.e. sigmoid(b) = 1/K for any K (not 0.1 for every K)
    fn = losses.build("cb_focal", [10] * k, form="sigmoid")
    assert fn.head_bias_init == pytest.approx(bias, abs=1e-12)
    assert 1 / (1 + math.exp(-fn.head_bias_init)) == pytest.approx(1 / k)
    model = models.build("small_cnn", num_classes=k, in_chans=1, width=4)
    models.adapt_head(model, bias_init=fn.head_bias_init)
    assert torch.allclose(model[-1].bias, torch.full((k,), bias))
    assert losses.build("cb_focal", [10] * k).head_bias_init is None  # softmax form: head untouched


def test_drw_switches_on_effective_number_weights_at_its_epoch() -> None:
    logits, y = batch(seed=7)
    fn = losses.build("ce", COUNTS, drw_start=0.5, drw_beta=0.99)
    plain = float(F.cross_entropy(logits, y))
    fn.start_epoch(4, 10)
    assert float(fn(logits, y)) == pytest.approx(plain, rel=1e-6)  # epoch 4 < 5: not yet
    fn.start_epoch(5, 10)
    w = losses.effective_number_weights(COUNTS, 0.99)
    expected = float(F.cross_entropy(logits, y, weight=w))  # the weighted mean, as LDAM-DRW's code
    assert float(fn(logits, y)) == pytest.approx(expected, rel=1e-6)


def test_ldam_asks_for_a_cosine_head_and_adapt_head_provides_it() -> None:
    fn = losses.build("ldam", COUNTS)
    model = models.build("small_cnn", num_classes=3, in_chans=1, width=4)
    models.adapt_head(model, cosine=fn.needs_cosine_head)
    out = model(torch.randn(5, 1, 8, 8))
    assert isinstance(model[-1], models.CosineLinear) and out.abs().max() <= 1.0 + 1e-5


# ---- robustness ------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [2, 10, 100])
@pytest.mark.parametrize("name, params", ALL)
def test_finite_loss_and_gradients_at_logits_of_1e4(name: str, params: dict, k: int, device: str) -> None:
    counts = [max(1, 1000 // (i + 1) ** 2) for i in range(k)]
    g = torch.Generator().manual_seed(k)
    logits = (torch.randn(8, k, generator=g) * 1e4).to(device).requires_grad_()
    y = torch.randint(0, k, (8,), generator=g).to(device)
    fn = losses.build(name, counts, **params)
    fn.start_epoch(9, 10)
    loss = fn(logits, y)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, params", ALL)
def test_bf16_autocast_is_within_tolerance_of_float32(name: str, params: dict, device: str) -> None:
    logits, y = batch(k=10, n=64, seed=8)
    logits, y = logits.to(device), y.to(device)
    counts = list(range(100, 0, -10))
    fn = losses.build(name, counts, **params)
    full = float(fn(logits, y))
    with torch.autocast(device, dtype=torch.bfloat16):
        half = float(fn(logits.bfloat16(), y))
    assert half == pytest.approx(full, rel=2e-2, abs=1e-3)


def test_unknown_loss_or_weighting_lists_known_names() -> None:
    with pytest.raises(UserError, match="unknown loss 'ldamm'; known: .*cb_focal.*ldam"):
        losses.build("ldamm", COUNTS)
    with pytest.raises(KeyError):
        losses.build("weighted_ce", COUNTS, weighting="inverse")


def test_poly1_is_ce_plus_epsilon_times_one_minus_p_t() -> None:
    # two equal logits: p_t = 1/2, CE = ln 2; poly1 = ln 2 + 2 * (1 - 1/2)
    loss = losses.build("poly1", [10, 1], epsilon=2.0)
    assert float(loss(torch.zeros(1, 2), torch.tensor([0]))) == pytest.approx(math.log(2) + 1.0)


# ---- reduction -------------------------------------------------------------------------------

def weighted_three() -> tuple[torch.Tensor, torch.Tensor, list[float], float]:
    """3 samples, weights from ins on counts (50, 20, 5): raw 1/50, 1/20, 1/5 (sum 27/100) scaled
    to sum K = 3 give w = (2/9, 5/9, 20/9). CE: sample 0 (class 0, logits 0, 0, 0) ln 3; sample 1 (class 2,
    logits 0, ln 3, 0) ln 5; sample 2 (class 2, logits 0, 0, ln 2) ln 2."""
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(3.0), 0.0], [0.0, 0.0, math.log(2.0)]])
    w = [2 / 9, 5 / 9, 20 / 9]
    num = w[0] * math.log(3.0) + w[2] * math.log(5.0) + w[2] * math.log(2.0)
    return logits, torch.tensor([0, 2, 2]), w, num


def test_weighted_mean_reduction_hand_worked() -> None:
    logits, y, w, num = weighted_three()
    got = float(losses.build("weighted_ce", COUNTS, weighting="ins", reduction="weighted_mean")(logits, y))
    assert got == pytest.approx(num / (w[0] + 2 * w[2]), rel=1e-6)
    assert float(losses.build("weighted_ce", COUNTS, weighting="ins")(logits, y)) == got  # the default


def test_mean_reduction_hand_worked() -> None:
    logits, y, w, num = weighted_three()
    got = float(losses.build("weighted_ce", COUNTS, weighting="ins", reduction="mean")(logits, y))
    assert got == pytest.approx(num / 3, rel=1e-6)


@pytest.mark.parametrize("weighting", ["ins", "isns", "ens"])
def test_weighted_mean_is_pytorchs_weighted_cross_entropy(weighting: str) -> None:
    logits, y = batch(k=3, n=32, seed=11)
    logits.requires_grad_()
    w = losses.WEIGHTINGS[weighting](COUNTS, 0.99).float()
    ours = losses.build("weighted_ce", COUNTS, weighting=weighting, beta=0.99)(logits, y)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = F.cross_entropy(logits, y, weight=w)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-6)
    assert torch.allclose(g_ours, g_ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("reduction", ["weighted_mean", "mean"])
def test_without_class_weights_both_reductions_are_the_plain_mean(reduction: str) -> None:
    logits, y = batch(seed=12)
    got = float(losses.build("focal", COUNTS, gamma=0.0, reduction=reduction)(logits, y))
    assert got == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)


def test_unknown_reduction_is_refused() -> None:
    with pytest.raises(UserError, match="reduction 'sum'"):
        losses.build("ce", COUNTS, reduction="sum")


# ---- focal with 0 < gamma < 1 --------------------------------------------------------------------

@pytest.mark.parametrize("name, params", [("focal", {}), ("cb_focal", {}), ("cb_focal", {"form": "sigmoid"})])
def test_focal_gamma_below_1_has_finite_gradients_when_confidently_right(name: str, params: dict) -> None:
    # float32 log-softmax of (18, 0, 0) at class 0 is exactly 0: (1 - p_t)^0.5 sits at its infinite slope
    logits = torch.tensor([[18.0, 0.0, 0.0]], requires_grad=True)
    loss = losses.build(name, COUNTS, gamma=0.5, **params)(logits, torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9, 2.0])
def test_focal_value_and_gradient_match_a_float64_reference(gamma: float) -> None:
    logits, y = batch(k=5, n=32, seed=13)
    logits = logits * 3
    x32 = logits.clone().requires_grad_()
    got = losses.build("focal", [1] * 5, gamma=gamma)(x32, y)
    got.backward()
    x64 = logits.double().requires_grad_()
    logp = F.log_softmax(x64, 1).gather(1, y[:, None]).squeeze(1)
    ref = (-(1 - logp.exp()) ** gamma * logp).mean()
    ref.backward()
    assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.allclose(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-7)
