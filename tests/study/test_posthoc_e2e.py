"""test_posthoc's end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path
import numpy as np
import optuna
import pytest
from conftest import SPACES, hpo
from hpo.spec import load_spec
from hpo.study import posthoc
from hpo.study.storage import ATTR_CONFIG, ATTR_OBJECTIVES
from hpo.train.metrics import adjust, evaluate
from hpo.views.artifacts import LOGITS, logits_npz, store
from test_posthoc import study_with_logits  # noqa: F401 - fixtures among them


def test_front_post_hoc_command_prints_both_fronts(tmp_path: Path) -> None:
    study_with_logits(tmp_path)
    r = hpo("front", "--study", "s", "--post-hoc", "--storage", f"sqlite:///{tmp_path / 's.db'}",
            "--artifacts", str(tmp_path / "art"))
    assert r.returncode == 0, r.stderr
    assert "post-hoc front over 82 (trial, tau) points" in r.stdout and "hypervolume: plain front" in r.stdout
    r = hpo("report", "--study", "s", "--post-hoc", "--out", str(tmp_path / "rep"), "--storage",
            f"sqlite:///{tmp_path / 's.db'}", "--artifacts", str(tmp_path / "art"))
    assert r.returncode == 0, r.stderr
    assert "post_hoc_hypervolume" in (tmp_path / "rep" / "hypervolume.csv").read_text()


def test_ensemble_command_prints_and_writes_a_file_hpo_train_reads(tmp_path: Path) -> None:
    from hpo.study.export import read_configs

    study_with_logits(tmp_path)
    out = tmp_path / "ens.yaml"
    r = hpo("ensemble", "--study", "s", "--size", "2", "--out", str(out), "--storage",
            f"sqlite:///{tmp_path / 's.db'}", "--artifacts", str(tmp_path / "art"))
    assert r.returncode == 0, r.stderr
    assert "best single (trial" in r.stdout and len(read_configs(out)) == 2
    r = hpo("train", "--config", str(out))  # re-trains both members and averages their softmax
    assert r.returncode == 0, r.stderr
    assert "ensemble of 2" in r.stdout and "test_minority_f1" in r.stdout


def test_front_and_export_post_hoc_keep_the_points_that_meet_a_recall_constraint(tmp_path: Path) -> None:
    """The real commands on a study whose trials both miss recall[c2] >= 0.9 as trained: the post-hoc
    front holds only taus that meet it, each trial's operating tau is shown and exported."""
    import yaml

    study, art = study_with_logits(tmp_path, stated=[{"metric": "recall", "class": "c2", "min": 0.9}])
    where = ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--artifacts", str(tmp_path / "art")]
    r = hpo("front", "--study", "s", "--post-hoc", *where)
    assert r.returncode == 0, r.stderr
    assert "(no trial met the constraints)" in r.stdout  # the plain front: both missed it at tau 0
    assert "operating points: per trial, the tau nearest 0 that meets recall[c2] >= 0.9" in r.stdout
    assert "post-hoc front over 82 (trial, tau) points" not in r.stdout
    r = hpo("front", "--study", "s", "--post-hoc", "--include-infeasible", *where)
    assert r.returncode == 0 and "post-hoc front over 82 (trial, tau) points" in r.stdout
    out = tmp_path / "front.yaml"
    r = hpo("export", "--study", "s", "--post-hoc", "--out", str(out), *where)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(out.read_text())
    chosen, _ = posthoc.operating(study, posthoc.points(study, art))
    assert doc["operating_points"] == [{"trial": p.trial, "posthoc_tau": p.tau} for p in chosen]
    assert doc["configs"] and all(c["posthoc_tau"] >= min(p.tau for p in chosen) for c in doc["configs"])
    assert doc["infeasible"]["trials"] == 2
    (strict := tmp_path / "strict").mkdir()  # no tau of either trial meets both: exit 2 saying so, not an empty front
    study_with_logits(strict, stated=[{"metric": "recall", "class": "c2", "min": 0.9}, {"metric": "macro_acc", "min": 0.95}])
    r = hpo("front", "--study", "s", "--post-hoc", "--storage", f"sqlite:///{strict / 's.db'}",
            "--artifacts", str(strict / "art"))
    assert r.returncode == 2 and "no (trial, tau) point" in r.stderr and "--include-infeasible" in r.stderr
