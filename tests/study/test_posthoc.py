"""Post-hoc logit adjustment over stored validation logits: curves, the (trial, tau) front, export rows."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pytest

from conftest import SPACES, hpo
from hpo.spec import load_spec, parse_spec
from hpo.study import constraints, posthoc
from hpo.study.storage import ATTR_CONFIG, ATTR_OBJECTIVES
from hpo.train.metrics import adjust, evaluate
from hpo.views.artifacts import LOGITS, logits_npz, store

COUNTS = [100, 30, 5]


def study_with_logits(tmp_path: Path, counts: list[int] = COUNTS,
                      stated: list[dict] | None = None, seconds: tuple[float, ...] = (10.0, 10.0)
                      ) -> tuple[optuna.Study, object]:
    """Two trained-looking trials whose logits favour the head class, stored as hpo stores them;
    `stated`: the study's constraints (as a study file states them), each trial's values recorded
    and told as the searcher does (its `seconds` taken from `seconds`)."""
    (tmp_path / "art").mkdir()
    url, art = f"sqlite:///{tmp_path / 's.db'}", store(tmp_path / "art")
    study = optuna.create_study(study_name="s", storage=url, directions=["maximize", "maximize"])
    study.set_user_attr(ATTR_OBJECTIVES, [{"name": "minority_f1", "direction": "maximize"},
                                          {"name": "macro_acc", "direction": "maximize"}])
    rng = np.random.default_rng(0)
    k = len(counts)
    y = np.repeat(np.arange(k), 20)
    cfg = load_spec(SPACES / "cb_focal_beta.yaml").trial_config({})
    cfg["train"]["epochs"] = 1  # what `hpo train` re-runs from an export of this study
    names = [f"c{i}" for i in range(k)]
    raw = {"search": {"lr": {"low": 0.01, "high": 0.1}}, "constraints": stated}
    cs = () if stated is None else parse_spec(raw, "s.yaml", default_name="s").constraints
    if stated is not None:
        study.set_user_attr(constraints.ATTR_STUDY, [c.to_json() for c in cs])
    for bias, secs in zip((1.0, 2.0), seconds):
        lg = rng.normal(size=(20 * k, k)) + 2.0 * np.eye(k)[y] + np.linspace(bias, -bias, k)  # head-favouring
        m = evaluate(y, lg.argmax(1), counts, class_names=names)
        trial = study.ask()
        attrs = {"class_counts": counts, "class_names": names, "minority": m["minority"], ATTR_CONFIG: cfg,
                 **constraints.record(trial, cs, {**m, "seconds": secs})}
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / LOGITS
            path.write_bytes(logits_npz({"val": lg.astype(np.float16), "y_val": y, "test": lg[:3], "y_test": y[:3]}))
            optuna.artifacts.upload_artifact(artifact_store=art, file_path=str(path), study_or_trial=trial)
        study.tell(trial, [m["minority_f1"], m["macro_acc"]])
    return study, art


def test_tau_zero_is_the_trial_and_the_post_hoc_front_dominates_the_plain_one(tmp_path: Path) -> None:
    study, art = study_with_logits(tmp_path)
    pts = posthoc.points(study, art)
    assert len(pts) == 2 * len(posthoc.TAUS)
    for t in study.trials:  # tau 0 reproduces the stored values
        zero = next(p for p in pts if p.trial == t.number and p.tau == 0)
        assert zero.values == pytest.approx(tuple(t.values), abs=1e-3)  # float16 logits
    plain, adjusted = posthoc.hypervolumes(study, pts)
    assert adjusted > plain  # head-biased logits: some tau > 0 trades better
    rows = posthoc.rows(study, pts)
    assert rows and all(r["config"]["train"]["posthoc_tau"] == r["posthoc_tau"] for r in rows)
    assert any(r["posthoc_tau"] > 0 for r in rows)


def test_adjust_subtracts_tau_log_prior() -> None:
    lg = np.zeros((1, 3))
    out = adjust(lg, COUNTS, 1.0)
    assert out[0] == pytest.approx(-np.log(np.array(COUNTS) / sum(COUNTS)))
    assert out.argmax() == 2  # equal logits: the rarest class wins once its prior is taken out


def test_ensemble_selection_is_greedy_on_validation_and_reports_test(tmp_path: Path) -> None:
    from hpo.study import ensemble

    study, art = study_with_logits(tmp_path)
    result = ensemble.select(study, art, size=3)
    assert len(result["members"]) == 3 and set(result["members"]) <= {0, 1}
    assert result["single"]["trial"] in (0, 1) and len(result["ensemble"]["test"]) == 2
    # the first member is the best single trial: greedy starts from the best one
    assert result["members"][0] == result["single"]["trial"]
    doc = ensemble.document(study, result)
    assert [c["trial"] for c in doc["configs"]] == result["members"] and doc["configs"][0]["config"]["train"]


def test_two_class_post_hoc_rows_name_the_threshold_on_the_minority_probability(tmp_path: Path) -> None:
    from hpo.train.metrics import decision_threshold

    study, art = study_with_logits(tmp_path, counts=[250, 50])
    rows = posthoc.rows(study, posthoc.points(study, art))
    assert rows and all(r["minority_threshold"] == round(decision_threshold([250, 50], r["posthoc_tau"], 1), 4)
                        for r in rows)
    (tmp_path / "three").mkdir()
    three, art3 = study_with_logits(tmp_path / "three")
    assert not any("minority_threshold" in r for r in posthoc.rows(three, posthoc.points(three, art3)))


def test_report_post_hoc_history_is_never_below_the_plain_one(tmp_path: Path) -> None:
    import pandas as pd

    from hpo.views.report import write_report

    study, art = study_with_logits(tmp_path)
    page = write_report(study, tmp_path / "rep", art)
    table = pd.read_csv(tmp_path / "rep" / "hypervolume.csv")
    assert list(table.columns) == ["trial", "hypervolume", "post_hoc_hypervolume"] and len(table) == 2
    assert (table["post_hoc_hypervolume"] >= table["hypervolume"] - 1e-12).all()  # tau 0 is the trial itself
    pts = posthoc.points(study, art)
    assert table["post_hoc_hypervolume"].iloc[-1] == pytest.approx(posthoc.hypervolumes(study, pts)[1])
    assert table["post_hoc_hypervolume"].iloc[-1] > table["hypervolume"].iloc[-1]  # these head-biased logits gain
    assert "post-hoc front" in page.read_text()
    write_report(study, tmp_path / "plain")  # without the artifact store: the plain history only
    assert list(pd.read_csv(tmp_path / "plain" / "hypervolume.csv").columns) == ["trial", "hypervolume"]


def tail_recalls(study: optuna.Study, art: object) -> dict[tuple[int, float], float]:
    """Recall of the rarest class at each (trial, tau), straight from the stored logits."""
    from sklearn.metrics import recall_score

    out = {}
    for t in study.trials:
        lg = posthoc.load_logits(t, study, art)
        for tau in posthoc.TAUS:
            pred = adjust(lg["val"].astype(np.float64), COUNTS, tau).argmax(1)
            out[(t.number, float(tau))] = recall_score(lg["y_val"], pred, labels=[2], average="macro")
    return out


def test_a_recall_constraint_keeps_the_points_that_meet_it_and_sets_each_trials_operating_tau(tmp_path: Path) -> None:
    """Both trials miss recall[c2] >= 0.9 as trained (tau 0): the plain front is empty, yet each has
    taus that meet it; only those points count, and each trial's operating point is the nearest such tau."""
    from hpo.study import pareto

    study, art = study_with_logits(tmp_path, stated=[{"metric": "recall", "class": "c2", "min": 0.9}])
    recall = tail_recalls(study, art)
    assert pareto.front(study) == [] and all(recall[(n, 0.0)] < 0.9 for n in (0, 1))
    pts = posthoc.points(study, art)
    assert pts and all(recall[(p.trial, p.tau)] >= 0.9 and p.feasible for p in pts)
    assert {(p.trial, p.tau) for p in pts} == {k for k, r in recall.items() if r >= 0.9}
    every = posthoc.points(study, art, include_infeasible=True)
    assert len(every) == 2 * len(posthoc.TAUS) and sum(p.feasible for p in every) == len(pts)
    chosen, none = posthoc.operating(study, pts)
    nearest = {n: min((tau for (m, tau), r in recall.items() if m == n and r >= 0.9), key=abs) for n in (0, 1)}
    assert {p.trial: p.tau for p in chosen} == nearest and none == []
    assert nearest[0] < nearest[1]  # the more head-biased trial needs the larger adjustment
    assert all(recall[(r["trial"], r["posthoc_tau"])] >= 0.9 for r in posthoc.rows(study, pts))
    plain, adjusted = posthoc.hypervolumes(study, pts)
    assert plain == 0 and adjusted > 0
    assert posthoc.hypervolumes(study, every, include_infeasible=True)[0] > 0


def test_a_cost_constraint_a_trial_missed_leaves_out_all_its_points(tmp_path: Path) -> None:
    """`seconds` does not move with tau: trial 1 took too long, so none of its taus counts."""
    study, art = study_with_logits(tmp_path, stated=[{"metric": "seconds", "max": 60}], seconds=(10.0, 100.0))
    assert {p.trial for p in posthoc.points(study, art)} == {0}
    assert posthoc.operating(study, posthoc.points(study, art)) == ([], [])  # no constraint on the predictions
    every = posthoc.points(study, art, include_infeasible=True)
    assert {p.trial for p in every if not p.feasible} == {1} and {p.trial for p in every} == {0, 1}
