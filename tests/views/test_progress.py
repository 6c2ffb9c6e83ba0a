"""Launch progress: counts, Pareto front size and bests; a live panel on terminals, lines elsewhere."""
from __future__ import annotations

import io

import numpy as np

from hpo.study.pareto import dominates
from hpo.views.progress import Progress


def brute_front(points: list[tuple[float, float]]) -> set[tuple[float, float]]:
    return {p for p in points if not any(dominates(q, p, [1, 1]) for q in points)}


def test_incremental_front_equals_the_brute_force_front() -> None:
    rng = np.random.default_rng(0)
    pts = [tuple(map(float, rng.random(2).round(2))) for _ in range(300)]
    p = Progress(["a", "b"], ["maximize", "maximize"], budget=300, stream=io.StringIO(), live=False)
    for i, v in enumerate(pts):
        p.trial_started()
        p.trial_finished(i, "COMPLETE", v, None)
    assert set(p.front) == brute_front(pts)
    assert p.best() == [max(v[0] for v in pts), max(v[1] for v in pts)]


def test_plain_lines_carry_counts_front_and_bests() -> None:
    out = io.StringIO()
    p = Progress(["minority_f1", "macro_acc"], ["maximize", "maximize"], budget=6,
                 prior_values=[(0.5, 0.6)], stream=out, live=False)
    for _ in range(3):
        p.trial_started()
    p.trial_finished(7, "COMPLETE", (0.7, 0.4), None)
    p.trial_finished(8, "FAIL", None, "non_finite_loss")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trial 7 COMPLETE: minority_f1=0.7000 macro_acc=0.4000")
    assert "complete 2/6, running 2, failed 0 | Pareto front 2 | best minority_f1 0.7000, macro_acc 0.6000" in lines[0]
    assert lines[1].startswith("trial 8 FAIL: non_finite_loss") and "running 1, failed 1" in lines[1]


def test_minimised_objectives_report_their_lowest_value() -> None:
    p = Progress(["loss"], ["minimize"], budget=2, prior_values=[(0.3,), (0.1,)], stream=io.StringIO(), live=False)
    assert p.best() == [0.1] and len(p.front) == 1


def test_live_panel_on_a_terminal() -> None:
    out = io.StringIO()
    p = Progress(["minority_f1", "macro_acc"], ["maximize", "maximize"], budget=4, stream=out, live=True)
    p.trial_started()
    p.trial_finished(0, "COMPLETE", (0.25, 0.5), None)
    p.close()
    text = out.getvalue()
    assert "hpo launch" in text and "complete 1/4" in text and "trial 0 COMPLETE" in text


def test_progress_pickles_without_its_terminal() -> None:
    import pickle

    p = Progress(["a"], ["maximize"], budget=3, prior_values=[(0.5,)], stream=open("/dev/null", "w"), live=False)
    q = pickle.loads(pickle.dumps(p))
    assert q.front == [(0.5,)] and q.complete == 1 and q.live is None
