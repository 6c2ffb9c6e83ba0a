"""MO-ASHA's rule on synthetic learning curves: dominated trials stop at the right rung,
non-dominated ones continue; ties and missing metrics are handled."""
from __future__ import annotations

import math

import pytest

from hpo.study.pareto import crowding, nondominated_ranks
from hpo.tune.mo_asha import MOASHA

MAX = [1, 1]


def test_rungs_are_grace_times_powers_of_eta_below_the_last_epoch() -> None:
    assert MOASHA(MAX, max_epochs=30, grace_epochs=1, eta=3).milestones == [1, 3, 9, 27]
    assert MOASHA(MAX, max_epochs=15, grace_epochs=2, eta=2).milestones == [2, 4, 8]


def test_nondominated_ranks_and_crowding_by_hand() -> None:
    pts = [(0.9, 0.1), (0.5, 0.5), (0.1, 0.9), (0.4, 0.4), (0.1, 0.1)]
    assert nondominated_ranks(pts, MAX) == [0, 0, 0, 1, 2]
    c = crowding(pts, [0, 1, 2])
    assert math.isinf(c[0]) and math.isinf(c[2]) and c[1] == pytest.approx(2.0)  # (0.8/0.8) per objective
    assert nondominated_ranks([(0.2, 0.8)], [1, -1]) == [0]


def curve(final: tuple[float, float], epoch: int, epochs: int) -> tuple[float, float]:
    """A learning curve rising linearly to `final`."""
    return (final[0] * epoch / epochs, final[1] * epoch / epochs)


def test_dominated_trials_stop_at_the_first_rung_and_front_trials_run_to_the_end() -> None:
    rule = MOASHA(MAX, max_epochs=9, grace_epochs=1, eta=3)  # rungs 1, 3
    finals = {"a": (0.8, 0.2), "b": (0.2, 0.8), "c": (0.1, 0.1), "d": (0.5, 0.5), "e": (0.05, 0.05),
              "f": (0.15, 0.12)}
    stopped_at: dict[str, int] = {}
    for t, fin in finals.items():  # trials arrive one after the other, each running until stopped
        for epoch in range(1, 10):
            if not rule.on_result(t, epoch, curve(fin, epoch, 9)):
                stopped_at[t] = epoch
                break
    # c (behind a), e and f (behind d) are dominated when they reach rung 1; a, b, d never are
    assert stopped_at == {"c": 1, "e": 1, "f": 1} == rule.stopped


def test_a_trial_that_falls_behind_later_stops_at_that_rung() -> None:
    rule = MOASHA(MAX, max_epochs=9, grace_epochs=1, eta=2)  # rungs 1, 2, 4, 8
    x = {1: (0.3, 0.3), 2: (0.4, 0.4), 4: (0.5, 0.5), 8: (0.6, 0.6)}
    assert all(rule.on_result("x", e, v) for e, v in x.items())
    assert rule.on_result("y", 1, (0.35, 0.35))  # ahead of x at rung 1
    assert not rule.on_result("y", 2, (0.36, 0.36))  # behind x at rung 2: stopped there
    assert rule.stopped == {"y": 2}


def test_a_non_dominated_newcomer_continues_even_beyond_the_quota() -> None:
    rule = MOASHA(MAX, max_epochs=9, grace_epochs=1, eta=3)
    assert rule.on_result("a", 1, (0.5, 0.5))
    assert not rule.on_result("b", 1, (0.4, 0.4))  # dominated by a
    assert rule.on_result("c", 1, (0.9, 0.1))  # top ceil(3/3) = 1 is a, but c is on the front


def test_ties_dominate_nobody_and_a_repeat_report_is_not_recounted() -> None:
    rule = MOASHA(MAX, max_epochs=9, grace_epochs=1, eta=2)
    assert rule.on_result("a", 1, (0.5, 0.5))
    assert rule.on_result("b", 1, (0.5, 0.5))  # equal, not better: both stay on the front
    assert rule.on_result("c", 1, (0.5, 0.5))
    assert not rule.on_result("d", 1, (0.4, 0.5))  # dominated by the tied three
    assert rule.on_result("a", 1, (0.5, 0.5)) and len(rule.rungs[1]) == 4  # repeat: not recorded twice
    assert not rule.on_result("d", 1, (0.4, 0.5))  # and a stopped trial stays stopped


def test_missing_or_non_finite_metrics_are_not_recorded_and_the_trial_continues() -> None:
    rule = MOASHA(MAX, max_epochs=9, grace_epochs=1, eta=3)
    assert rule.on_result("a", 1, (0.9, 0.9))
    assert rule.on_result("b", 1, None)
    assert rule.on_result("c", 1, (0.1, None))
    assert rule.on_result("d", 1, (float("nan"), 0.1))
    assert rule.on_result("e", 2, (0.0, 0.0))  # epoch 2 is no rung
    assert [t for t, _ in rule.rungs[1]] == ["a"] and not rule.stopped


def test_minimised_objectives_flip_the_order() -> None:
    rule = MOASHA([-1, -1], max_epochs=9, grace_epochs=1, eta=2)
    assert rule.on_result("low", 1, (0.1, 0.1))
    assert not rule.on_result("high", 1, (0.9, 0.9))


def _constraint(item: dict):
    from hpo.spec import parse_spec

    (c,) = parse_spec({"search": {"lr": {"low": 0.01, "high": 0.1}}, "constraints": [item]}, "s.yaml",
                      default_name="s").constraints
    return c


@pytest.mark.parametrize("item, expected", [
    ({"metric": "seconds", "max": 60}, True),  # time spent only grows
    ({"metric": "gpu_mem_peak_mb", "max": 8000}, True),  # a peak only grows
    ({"metric": "n_params", "max": 10_000}, True),  # fixed once the model is built
    ({"metric": "n_params", "min": 100}, True),
    ({"metric": "seconds", "min": 5}, False),  # short now, maybe long enough by the last epoch
    ({"metric": "recall", "class": 1, "min": 0.9}, False),  # a recall can rise or fall each epoch
    ({"metric": "macro_acc", "min": 0.5}, False),
])
def test_which_constraints_are_monotone_in_training(item: dict, expected: bool) -> None:
    from hpo.tune.mo_asha import monotone

    assert monotone(_constraint(item)) is expected


def test_a_trial_over_a_monotone_bound_at_its_rung_stops_unrecorded_and_others_keep_their_place() -> None:
    """x is ahead of everyone but over the time bound at rung 1: stopped there and not recorded, so
    y (which x would have dominated out of the quota) continues. A missed recall bound stops nobody."""
    rule = MOASHA(MAX, max_epochs=9, grace_epochs=1, eta=3,
                  constraints=[_constraint({"metric": "seconds", "max": 60}),
                               _constraint({"metric": "recall", "class": 1, "min": 0.99})])
    assert rule.on_result("x", 0, (0.9, 0.9), {"seconds": 500.0})  # not a rung: nothing decided
    assert not rule.on_result("x", 1, (0.9, 0.9), {"seconds": 70.0})
    assert rule.stopped == {"x": 1} and rule.missed == {"x": ["seconds <= 60"]} and rule.rungs[1] == []
    assert not rule.on_result("x", 1, (0.9, 0.9), {"seconds": 70.0})  # a repeated report: still stopped
    assert rule.on_result("y", 1, (0.5, 0.5), {"seconds": 10.0, "recall": 0.1})
    assert rule.on_result("z", 1, (0.4, 0.4), {"seconds": 10.0}) is False  # dominated by y: the usual rule
    assert rule.on_result("w", 1, (0.6, 0.1), {})  # no cost reported: no evidence against it


def test_the_scheduler_reads_the_costs_from_the_epochs_report() -> None:
    from ray.tune.schedulers import TrialScheduler

    from hpo.tune.mo_asha import SCHEDULERS

    sched = SCHEDULERS.build("mo_asha", metrics=["minority_f1", "macro_acc"], directions=["maximize", "maximize"],
                             max_epochs=9, constraints=[_constraint({"metric": "n_params", "max": 1000})])

    class Trial:
        trial_id = "t"

    result = {"epoch": 1, "minority_f1": 0.9, "macro_acc": 0.9, "n_params": 93_322.0}
    assert sched.on_trial_result(None, Trial(), result) == TrialScheduler.STOP
    assert SCHEDULERS.build("none", metrics=["a"], directions=["maximize"], max_epochs=9, constraints=[]) is None
