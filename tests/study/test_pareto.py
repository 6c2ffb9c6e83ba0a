"""Pareto logic on hand-worked points: directions, dominance, ranks, hypervolume."""
from __future__ import annotations

import pytest

from hpo.study.pareto import crowding, dominates, hypervolume, nondominated_ranks, signs


def test_signs_read_every_spelling_of_a_direction() -> None:
    import optuna

    assert signs(["maximize", "minimize", "max", optuna.study.StudyDirection.MINIMIZE]) == [1, -1, 1, -1]


def test_dominance_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates([0.5, 0.5], [0.4, 0.5], [1, 1])
    assert not dominates([0.5, 0.5], [0.5, 0.5], [1, 1])
    assert not dominates([0.6, 0.4], [0.5, 0.5], [1, 1])
    assert dominates([0.5, 0.1], [0.5, 0.2], [1, -1])  # second objective minimised


def test_ranks_peel_fronts() -> None:
    pts = [(1, 0), (0, 1), (0.5, 0.5), (0.4, 0.4), (0, 0)]
    assert nondominated_ranks(pts, [1, 1]) == [0, 0, 0, 1, 2]
    assert crowding(pts, [0, 1, 2])[2] == pytest.approx(2.0)


def test_hypervolume_of_hand_worked_fronts() -> None:
    # two boxes from (0, 0): 0.5 x 0.5 and 0.8 x 0.2, overlapping in 0.5 x 0.2 -> 0.25 + 0.16 - 0.10
    assert hypervolume([(0.5, 0.5), (0.8, 0.2)], [1, 1], [0, 0]) == pytest.approx(0.31)
    assert hypervolume([(0.5, 0.5), (0.4, 0.4)], [1, 1], [0, 0]) == pytest.approx(0.25)  # dominated adds 0
    assert hypervolume([(0.5, 0.2)], [1, -1], [0, 1]) == pytest.approx(0.4)  # minimised: 0.5 x (1 - 0.2)
    # 3-D: unit cube corner (1,1,0.5) plus (0.5,0.5,1): 0.5 + 0.25 - 0.125
    assert hypervolume([(1, 1, 0.5), (0.5, 0.5, 1)], [1, 1, 1], [0, 0, 0]) == pytest.approx(0.625)
    assert hypervolume([], [1, 1], [0, 0]) == 0.0
