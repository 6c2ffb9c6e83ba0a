"""A study fixes what its trials train on: a changed fixed setting is refused, or recorded and kept apart."""
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


def folder_study(tmp_path) -> tuple[object, list]:
    """A study of a folder of PNGs (12 per class, no long-tail cut) and the image paths."""
    from datafiles import write_png_tree

    paths = write_png_tree(tmp_path / "imgs", per_class=12)
    data = {"name": "imagefolder", "params": {"root": str(tmp_path / "imgs"), "image_size": 8, "channels": 1},
            "longtail": {"profile": "none"}}
    return parse_spec(yaml.safe_load(write_study(tmp_path, "folder", data=data, minority=[3]).read_text()),
                      str(tmp_path / "folder.yaml")), paths


def checked(spec) -> dict:
    """The data record a launch passes to settle: what the data check's process computes, here in this one."""
    from hpo.train.preflight import check_study
    from hpo.tune.data_check import content_digest

    splits = check_study(spec)
    return settings.data_record(splits, content_digest(splits))


def test_changed_data_is_refused_showing_per_class_counts_and_nothing_is_overwritten(sqlite_url: str, tmp_path) -> None:
    # 5 images added to one class and 4 removed from another were accepted: trials on both shared a front
    spec, paths = folder_study(tmp_path)
    study = st.open_study(spec, st.open_storage(sqlite_url))
    first = checked(spec)
    assert settings.settle(study, spec, False, first) == 0 and settings.settle(study, spec, False, checked(spec)) == 0
    for i in range(5):
        (tmp_path / "imgs" / "digit_3" / f"extra{i}.png").write_bytes(paths[i].read_bytes())
    for p in [p for p in paths if p.parent.name == "digit_7"][:4]:
        p.unlink()
    changed = checked(spec)
    assert changed["counts"]["train"][3] > first["counts"]["train"][3]
    with pytest.raises(UserError, match=r"(?s)was run with other data; its trials would share a front.*"
                                        r"data class 'digit_3': train 7 -> 10, val 2 -> 3, test 3 -> 4\n"
                                        r"  data class 'digit_6': val 3 -> 2, test 2 -> 3\n"  # the stratified draw
                                        r"  data class 'digit_7': train 7 -> 4, test 3 -> 2\n"
                                        r"  fix: .*--allow-changed-settings"):
        settings.settle(study, spec, False, changed)
    assert study.user_attrs[settings.ATTR_DATA] == first  # refused: the study's record stays as it was
    assert settings.settle(study, spec, True, changed) == 1  # allowed: recorded, and later trials kept apart
    assert study.user_attrs[settings.ATTR_DATA] == changed
    assert study.user_attrs[settings.ATTR_CHANGES][0]["changes"]["data"][0].startswith("data class 'digit_3'")
    assert settings.settle(study, spec, False, checked(spec)) == 1


def test_other_images_at_the_same_counts_are_refused_too(sqlite_url: str, tmp_path) -> None:
    spec, paths = folder_study(tmp_path)
    study = st.open_study(spec, st.open_storage(sqlite_url))
    settings.settle(study, spec, False, checked(spec))
    (tmp_path / "imgs" / ".ipynb_checkpoints").mkdir()  # what the data set never reads changes nothing
    (tmp_path / "imgs" / ".ipynb_checkpoints" / "x.png").write_bytes(paths[0].read_bytes())
    os.utime(paths[1], ns=(1, 1))  # a file touched (copied without its times): the same images
    assert settings.settle(study, spec, False, checked(spec)) == 0
    paths[1].write_bytes(paths[40].read_bytes())  # an image replaced in place: same counts, other pixels
    with pytest.raises(UserError, match=r"data: the same class counts, other images"):
        settings.settle(study, spec, False, checked(spec))


def test_a_study_from_before_its_data_was_recorded_compares_the_training_counts(sqlite_url: str, tmp_path) -> None:
    from hpo.train.preflight import check_study

    spec, paths = folder_study(tmp_path)
    study = st.open_study(spec, st.open_storage(sqlite_url))
    settings.settle(study, spec, False)  # as an older hpo did: the settings and the counts, no data record
    st.record_data(study, check_study(spec))
    for i in range(5):
        (tmp_path / "imgs" / "digit_3" / f"extra{i}.png").write_bytes(paths[i].read_bytes())
    with pytest.raises(UserError, match=r"data class 'digit_3': train 7 -> 11\n  data class 'digit_4': train 8 -> 7\n  fix"):
        settings.settle(study, spec, False, checked(spec))
    assert settings.ATTR_DATA not in study.user_attrs
    (tmp_path / "imgs" / "digit_3" / "extra0.png").unlink()
    for i in range(1, 5):
        (tmp_path / "imgs" / "digit_3" / f"extra{i}.png").unlink()
    assert settings.settle(study, spec, False, checked(spec)) == 0  # the same data: its record is added
    assert settings.ATTR_DATA in study.user_attrs
