"""test_settings's end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
from __future__ import annotations

import os
import optuna
import pytest
import yaml
from conftest import SPACES, hpo, write_study
from hpo.errors import UserError
from hpo.spec import parse_spec
from hpo.study import pareto, settings
from hpo.study import storage as st
from test_settings import checked, folder_study, spec  # noqa: F401 - fixtures among them


def test_hpo_launch_with_changed_settings_exits_2_before_ray(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = write_study(tmp_path / "spaces", "s", train={"epochs": 3})
    first = parse_spec(yaml.safe_load(path.read_text()), str(path))
    settings.settle(st.open_study(first, st.open_storage(url)), first, False)
    write_study(tmp_path / "spaces", "s", train={"epochs": 4})
    r = hpo("launch", "--study", "s", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and "train.epochs: was 3, now 4" in r.stderr, r.stderr
    assert not (tmp_path / "storage" / "ray").exists()


def test_hpo_launch_on_changed_data_exits_2_before_ray_and_keeps_the_studys_counts(tmp_path) -> None:
    from hpo.train.preflight import check_study

    spec, paths = folder_study(tmp_path / "spaces")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = st.open_study(spec, st.open_storage(url))
    settings.settle(study, spec, False, checked(spec))  # as a first launch leaves it
    st.record_data(study, check_study(spec))
    counts = study.user_attrs["class_counts"]
    for i in range(5):
        (tmp_path / "spaces" / "imgs" / "digit_3" / f"extra{i}.png").write_bytes(paths[i].read_bytes())
    r = hpo("launch", "--study", "folder", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and "data class 'digit_3': train 7 -> 11" in r.stderr, r.stderr
    assert "--allow-changed-settings" in r.stderr and not (tmp_path / "storage" / "ray").exists()
    assert optuna.load_study(study_name="folder", storage=url).user_attrs["class_counts"] == counts
