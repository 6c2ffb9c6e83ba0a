"""test_trust's end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
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
from test_trust import make_study, url  # noqa: F401 - fixtures among them


def test_status_and_export_show_a_bound_and_collapse_identical_points(url: str, tmp_path: Path) -> None:
    make_study(url, [((0.9, 0.1), {"lr": 0.3}), ((0.9, 0.1), {"lr": 0.01}), ((0.6, 0.5), {"lr": 0.29}),
                     ((0.1, 0.9), {"lr": 0.285}), ((0.1, 0.1), {})], name="edge")
    r = hpo("status", "--study", "edge", "--storage", url)
    assert r.returncode == 0, r.stderr
    assert "Pareto front (3 trials):\n1 identical point collapsed (trials with the same objective values: 1 as 0)" \
        in r.stdout
    assert "the front: 4 Pareto-best of 5 finished trials" in r.stdout
    assert "lr: 3 of 3 Pareto-best trials at the upper bound 0.3 (within 5%): widen the range" in r.stdout
    out = tmp_path / "front.yaml"
    r = hpo("export", "--study", "edge", "--storage", url, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote 3 Pareto-best configs" in r.stdout and \
        "from 5 finished trials: 4 Pareto-best, 1 identical point collapsed" in r.stdout
    assert "lr: 3 of 3 Pareto-best trials at the upper bound 0.3 (within 5%): widen the range" in r.stdout
    doc = yaml.safe_load(out.read_text())
    assert [c["trial"] for c in doc["configs"]] == [0, 2, 3] and doc["configs"][0]["identical_trials"] == [1]
    assert doc["trust"]["warnings"] == ["lr: 3 of 3 Pareto-best trials at the upper bound 0.3 (within 5%): "
                                        "widen the range"]


def test_hpo_train_on_an_export_records_the_spread_a_later_export_prints(url: str, tmp_path: Path) -> None:
    from hpo.spec import load_spec

    cfg = load_spec(SPACES / "cb_focal_beta.yaml").trial_config({})
    cfg["train"]["epochs"] = 1
    make_study(url, [((0.8, 0.5), {}), ((0.5, 0.8), {})], name="re", trial_attrs={st.ATTR_CONFIG: cfg})
    out = tmp_path / "front.yaml"
    assert hpo("export", "--study", "re", "--storage", url, "--out", str(out)).returncode == 0
    r = hpo("train", "--config", str(out), "--index", "1", "--seeds", "2")
    assert r.returncode == 0, r.stderr
    assert f"re-train spread recorded in {tmp_path / 'front.retrain.json'}" in r.stdout
    r = hpo("export", "--study", "re", "--storage", url, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "trial 1 re-trained over 2 seeds (test split): minority_f1 " in r.stdout and " ± " in r.stdout
    assert yaml.safe_load(out.read_text())["configs"][1]["retrain"]["seeds"] == 2
