"""A study fixes what its trials train on: a changed fixed setting is refused, or recorded and kept apart."""
from __future__ import annotations

import optuna
import pytest
import yaml

from conftest import SPACES, hpo, write_study
from hpo.errors import UserError
from hpo.spec import parse_spec
from hpo.study import pareto, settings
from hpo.study import storage as st


def spec(**sections: dict) -> object:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    for k, v in sections.items():
        raw[k] = {**raw[k], **v}
    return parse_spec(raw, "cb_focal_beta.yaml")


def test_searched_fields_are_not_fixed_settings() -> None:
    fixed = settings.fixed_settings(spec())
    assert fixed["data.longtail.ratio"] == 50 and fixed["train.epochs"] == 15
    assert "train.lr" not in fixed and "loss.beta" not in fixed  # searched: may differ trial to trial


def test_changed_fixed_settings_are_refused_showing_the_difference(sqlite_url: str) -> None:
    study = st.open_study(spec(), st.open_storage(sqlite_url))
    assert settings.settle(study, spec(), False) == 0
    assert settings.settle(study, spec(), False) == 0  # unchanged: fine
    changed = spec(data={"longtail": {"profile": "exp", "ratio": 20}}, train={"epochs": 3})
    with pytest.raises(UserError, match=r"(?s)data.longtail.ratio: was 50, now 20.*train.epochs: was 15, now 3.*"
                                        r"--allow-changed-settings"):
        settings.settle(study, changed, False)


def test_allowed_change_is_recorded_and_fronts_keep_to_the_current_settings(sqlite_url: str) -> None:
    study = st.open_study(spec(), st.open_storage(sqlite_url))
    settings.settle(study, spec(), False)
    study.add_trial(optuna.trial.create_trial(values=[0.9, 0.9], user_attrs={settings.ATTR_TRIAL_VERSION: 0}))
    assert settings.settle(study, spec(train={"epochs": 3}), True) == 1
    study.add_trial(optuna.trial.create_trial(values=[0.1, 0.1], user_attrs={settings.ATTR_TRIAL_VERSION: 1}))
    change = study.user_attrs[settings.ATTR_CHANGES][0]
    assert change["version"] == 1 and change["changes"] == {"train.epochs": [15, 3]}
    assert [t.values for t in pareto.front(study)] == [[0.1, 0.1]]  # the old, better trial is not mixed in


@pytest.mark.e2e  # the real `hpo` command in a subprocess: seconds each
def test_hpo_launch_with_changed_settings_exits_2_before_ray(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = write_study(tmp_path / "spaces", "s", train={"epochs": 3})
    first = parse_spec(yaml.safe_load(path.read_text()), str(path))
    settings.settle(st.open_study(first, st.open_storage(url)), first, False)
    write_study(tmp_path / "spaces", "s", train={"epochs": 4})
    r = hpo("launch", "--study", "s", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and "train.epochs: was 3, now 4" in r.stderr, r.stderr
    assert not (tmp_path / "storage" / "ray").exists()
