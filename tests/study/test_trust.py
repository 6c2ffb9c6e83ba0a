"""Trust signals (hpo.study.trust) on real SQLite studies built through Optuna's public API: parameters at
a bound, the chance verdict, identical front points, the front's support and the re-train spread; and
where they show: the export document, the report, the dashboard note, `hpo status` / `hpo export`."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
import pandas as pd
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from conftest import SPACES, hpo, write_study
from hpo.study import export, trust
from hpo.study import storage as st

optuna.logging.set_verbosity(optuna.logging.WARNING)
OBJECTIVES = [{"name": "minority_f1", "direction": "maximize"}, {"name": "macro_acc", "direction": "maximize"}]
DISTS = {"lr": FloatDistribution(1e-3, 0.3, log=True), "gamma": FloatDistribution(0.0, 3.0),
         "threshold": IntDistribution(0, 60), "batch_size": CategoricalDistribution([16, 32, 64]),
         "one_minus_beta": FloatDistribution(1e-5, 0.1, log=True)}


def make_study(url: str, points: list[tuple[tuple[float, float], dict[str, Any]]], name: str = "t",
               attrs: dict[str, Any] | None = None, trial_attrs: dict[str, Any] | None = None) -> optuna.Study:
    """A study as hpo writes one: named objectives, class counts, COMPLETE trials with `(values, params)`."""
    study = optuna.create_study(study_name=name, storage=url, directions=["maximize", "maximize"])
    study.set_user_attr(st.ATTR_OBJECTIVES, OBJECTIVES)
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    for values, params in points:
        full = {"lr": 0.01, "gamma": 1.5, "threshold": 30, "batch_size": 32, "one_minus_beta": 1e-3, **params}
        study.add_trial(optuna.trial.create_trial(values=list(values), params=full,
                                                  distributions={k: DISTS[k] for k in full},
                                                  user_attrs=dict(trial_attrs or {})))
    return study


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'trust.db'}"


# --- (a) a parameter at a bound -----------------------------------------------------------------

def test_pareto_best_trials_at_the_upper_bound_of_a_log_range_name_it_with_widen_the_range(url: str) -> None:
    # four Pareto-best trials (a trade-off), three of them with lr within 5% (log scale) of 0.3
    study = make_study(url, [((0.9, 0.1), {"lr": 0.29}), ((0.7, 0.4), {"lr": 0.3}), ((0.5, 0.6), {"lr": 0.28}),
                             ((0.2, 0.9), {"lr": 0.01}), ((0.1, 0.1), {"lr": 0.3})])  # the last one is dominated
    found = trust.signals(study)
    assert "lr: 3 of 4 Pareto-best trials at the upper bound 0.3 (within 5%): widen the range" in found.warnings()
    assert not any(w.startswith(("gamma", "threshold", "batch_size")) for w in found.warnings())


def test_the_log_scale_decides_what_is_near_a_bound(url: str) -> None:
    # lr 0.004 is within 5% of [0.001, 0.3]'s width from 0.001 on a linear scale, not on the log scale it is searched on
    study = make_study(url, [((0.9, 0.1), {"lr": 0.004}), ((0.1, 0.9), {"lr": 0.004})])
    assert not [e for e in trust.signals(study).edges if e.param == "lr"]
    near = make_study(url, [((0.9, 0.1), {"lr": 0.00125}), ((0.1, 0.9), {"lr": 0.0011})], name="near")
    assert [(e.param, e.side, e.bound, e.count, e.of) for e in trust.signals(near).edges] == \
        [("lr", "lower", 0.001, 2, 2)]


def test_an_integer_at_its_bound_and_a_bound_the_catalog_forbids_passing(url: str) -> None:
    # threshold at 60 can grow; gamma at 0 cannot go below 0 (the loss's check): that edge is not "widen the range"
    study = make_study(url, [((0.9, 0.1), {"threshold": 60, "gamma": 0.0}), ((0.1, 0.9), {"threshold": 59, "gamma": 0.1})])
    lines = trust.signals(study).warnings()
    assert "threshold: 2 of 2 Pareto-best trials at the upper bound 60 (within 5%): widen the range" in lines
    gamma = next(w for w in lines if w.startswith("gamma"))
    assert "lower bound 0 " in gamma and "cannot widen" in gamma and "widen the range" not in gamma


def test_a_complemented_parameter_is_named_as_the_study_file_names_it(url: str) -> None:
    study = make_study(url, [((0.9, 0.1), {"one_minus_beta": 1e-5}), ((0.1, 0.9), {"one_minus_beta": 1.2e-5})])
    assert "beta (searched as 1 - beta): 2 of 2 Pareto-best trials at the lower bound 1e-05 (within 5%): " \
           "widen the range" in trust.signals(study).warnings()


def test_categorical_params_and_a_front_spread_over_the_range_say_nothing(url: str) -> None:
    study = make_study(url, [((0.9, 0.1), {"batch_size": 16, "lr": 0.3}), ((0.6, 0.5), {"batch_size": 16, "lr": 0.02}),
                             ((0.1, 0.9), {"batch_size": 16, "lr": 0.002})])
    assert trust.signals(study).edges == []  # 1 of 3 at a bound is a trade-off's end, not a cut-off range


def test_the_complement_prefix_is_the_one_the_spec_gives_optuna() -> None:
    from hpo.spec import Param

    assert Param("beta", "loss", "float", 1e-5, 0.1, complement=True).optuna_name == trust.COMPLEMENT + "beta"


# --- (b) no trial beats chance ------------------------------------------------------------------

def test_the_noise_rule_on_a_balanced_split_is_the_binomial_standard_error() -> None:
    guess = trust.chance([100, 100, 100, 100], minority=[3])
    assert guess.macro == 0.25 and guess.macro_se == pytest.approx(math.sqrt(0.25 * 0.75 / 400))
    assert guess.f1 == pytest.approx(2 * 0.25 * 0.25 / 0.5)  # share 1/4, recall 1/4
    assert guess.f1_se == pytest.approx(math.sqrt(guess.f1 * (1 - guess.f1) / 100))


CHANCE_ATTRS = {"class_counts": [300, 300, 30], "split_sizes": {"train": 630, "val": 300, "test": 300}}
PER_CLASS = {"per_class": {n: {"support": 100} for n in ("a", "b", "c")}, "minority": [2],
             "config": {"train": {"epochs": 2, "lr": 0.01}, "model": {"name": "small_cnn"}}}


def test_a_study_whose_trials_all_score_like_a_guess_gets_a_verdict_with_causes(url: str) -> None:
    # three classes of 100 validation images: 1/3 +- 2 x 0.027; no trial's minority F1 above a guess's 0.33 + noise
    study = make_study(url, [((0.0, 0.34), {}), ((0.05, 0.33), {}), ((0.30, 0.36), {})],
                       attrs=CHANCE_ATTRS, trial_attrs=PER_CLASS)
    lines = trust.verdict(study)
    assert lines[0].startswith("No trial beats chance: the best macro accuracy of 3 finished trials, 0.360, "
                               "is within noise of 1/3 = 0.333 (±0.054 on 300 validation images)")
    assert "lr searched over 0.001..0.3" in lines[1] and "train.epochs = 2" in lines[1] and "small_cnn" in lines[1]
    assert lines == trust.signals(study).verdict and lines[0] in trust.signals(study).lines()


def test_one_trial_above_noise_on_either_objective_means_no_verdict(url: str) -> None:
    learnt = make_study(url, [((0.0, 0.34), {}), ((0.05, 0.42), {})], attrs=CHANCE_ATTRS, trial_attrs=PER_CLASS)
    assert trust.verdict(learnt) == []  # 0.42 > 0.333 + 0.054
    minority = make_study(url, [((0.0, 0.34), {}), ((0.6, 0.30), {})], name="m", attrs=CHANCE_ATTRS,
                          trial_attrs=PER_CLASS)
    assert trust.verdict(minority) == []
    unknown = make_study(url, [((0.0, 0.34), {})], name="u")  # no class counts recorded: nothing to judge against
    assert trust.verdict(unknown) == []


# --- (c) identical points, (d) support ----------------------------------------------------------

def test_identical_front_points_are_exported_once_with_the_duplicates_listed(url: str, tmp_path: Path) -> None:
    study = make_study(url, [((0.8, 0.5), {"gamma": 1.0}), ((0.5, 0.8), {}), ((0.8, 0.5), {"gamma": 2.0}),
                             ((0.8, 0.5), {}), ((0.2, 0.2), {})])
    doc = export.document(study, url)
    assert [r["trial"] for r in doc["configs"]] == [0, 1]
    assert doc["configs"][0]["identical_trials"] == [2, 3] and "identical_trials" not in doc["configs"][1]
    assert doc["trust"] == {"finished_trials": 5, "pareto_best": 4, "identical_collapsed": 2, "warnings": []}
    assert trust.export_lines(doc)[0] == "from 5 finished trials: 4 Pareto-best, 2 identical points collapsed"
    out = export.write(doc, tmp_path / "front.yaml")
    assert yaml.safe_load(out.read_text())["configs"][0]["identical_trials"] == [2, 3]
    assert trust.signals(study).lines()[:2] == [
        "the front: 4 Pareto-best of 5 finished trials",
        "2 identical points collapsed (trials with the same objective values: 2, 3 as 0)"]


# --- (d) the re-train spread --------------------------------------------------------------------

def _seeds(values: list[float]) -> pd.DataFrame:
    """`hpo.train.retrain.retrain`'s per-seed table, as it returns it."""
    return pd.DataFrame([{"seed": i, "val_minority_f1": 0.5, "test_minority_f1": v, "test_macro_acc": 0.7 + v / 10,
                          "test_f1[0]": 0.9} for i, v in enumerate(values)])


def test_a_recorded_retrain_shows_its_spread_in_a_later_export_to_the_same_file(url: str, tmp_path: Path) -> None:
    study = make_study(url, [((0.8, 0.5), {}), ((0.5, 0.8), {})])
    out = tmp_path / "front.json"
    export.write(export.document(study, url, out), out)
    assert trust.record_retrain(out, 1, _seeds([0.4, 0.5, 0.6])) == tmp_path / "front.retrain.json"
    doc = export.document(study, url, out)
    got = doc["configs"][1]["retrain"]
    assert got["seeds"] == 3 and got["test"]["minority_f1"] == {"mean": pytest.approx(0.5), "std": pytest.approx(0.1)}
    assert "retrain" not in doc["configs"][0]
    assert "trial 1 re-trained over 3 seeds (test split): minority_f1 0.5000 ± 0.1000, macro_acc 0.7500 ± 0.0100" \
        in trust.export_lines(doc)
    assert "retrain" not in export.document(study, url, tmp_path / "elsewhere.json")["configs"][1]
    other = make_study(url, [((0.8, 0.5), {}), ((0.5, 0.8), {})], name="other")  # same file name, another study
    assert "retrain" not in export.document(other, url, out)["configs"][1]


def test_a_single_seed_retrain_says_it_has_no_spread_and_a_csv_export_is_recorded_too(url: str, tmp_path: Path) -> None:
    study = make_study(url, [((0.8, 0.5), {})])
    out = export.write(export.document(study, url), tmp_path / "front.csv")
    trust.record_retrain(out, 0, _seeds([0.4]))
    line = trust.export_lines(export.document(study, url, out))[1]
    assert line.startswith("trial 0 re-trained over 1 seed (test split): minority_f1 0.4000,") and "no spread" in line


def test_a_hand_written_config_file_records_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"configs": [{"config": {}}]}))
    assert trust.record_retrain(cfg, 0, _seeds([0.4, 0.5])) is None and not trust.retrain_path(cfg).exists()


# --- where the signals show: report, note -------------------------------------------------------

def test_the_report_shows_the_trust_signals_and_the_front_table_once_per_point(url: str, tmp_path: Path) -> None:
    from hpo.views.report import write_report

    study = make_study(url, [((0.9, 0.1), {"lr": 0.3}), ((0.9, 0.1), {"lr": 0.29}), ((0.1, 0.9), {"lr": 0.28})])
    page = write_report(study, tmp_path / "rep").read_text()
    assert "<h2>Trust signals</h2>" in page and "lr: 2 of 2 Pareto-best trials at the upper bound 0.3" in page
    assert "1 identical point collapsed" in page
    assert list(pd.read_csv(tmp_path / "rep" / "pareto_front.csv")["trial"]) == [0, 2]


def test_the_note_carries_the_trust_warnings_and_is_rewritten_only_when_they_change(url: str, tmp_path: Path) -> None:
    from hpo.spec import load_spec
    from hpo.train.preflight import DataSummary, check_study
    from hpo.views import notes

    spec = load_spec(write_study(tmp_path, "noted"))
    data = DataSummary.of(check_study(spec))
    study = make_study(url, [((0.9, 0.1), {"lr": 0.3}), ((0.1, 0.9), {"lr": 0.29})])
    notes.Later(study, spec, data).finish()
    note = optuna_dashboard.get_note(study)
    assert "# noted" in note and "## Trust signals" in note and "lr: 2 of 2 Pareto-best trials" in note
    optuna_dashboard.save_note(study, "edited in the dashboard")
    notes.Later(study, spec, data).finish()  # same study file, same warnings: the edit stays
    assert optuna_dashboard.get_note(study) == "edited in the dashboard"
    study.add_trial(optuna.trial.create_trial(values=[0.5, 0.5], params={"lr": 0.01}, distributions={"lr": DISTS["lr"]}))
    notes.Later(study, spec, data).finish()  # the warnings changed (2 of 3): the note says so
    assert "lr: 2 of 3 Pareto-best trials" in optuna_dashboard.get_note(study)


# --- the real command -----------------------------------------------------------------------------
