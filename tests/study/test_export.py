"""Export files round-trip in every format, and `hpo train` checks a config like a study file."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import SPACES, hpo
from hpo.errors import UserError
from hpo.spec import load_spec
from hpo.study import export


def doc() -> dict:
    cfg = load_spec(SPACES / "cb_focal_beta.yaml").trial_config({"lr": 0.01, "one_minus_beta": 0.01})
    return {"study": "s", "storage": "sqlite:///x.db", "objectives": None,
            "configs": [{"trial": 3, "values": {"minority_f1": 0.5, "macro_acc": 0.6},
                         "params": {"lr": 0.01}, "config": cfg}]}


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_write_then_read_gives_back_the_configs(tmp_path: Path, fmt: str) -> None:
    path = export.write(doc(), tmp_path / f"front.{fmt}")
    assert export.read_configs(path) == [doc()["configs"][0]["config"]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_a_typo_in_an_exported_config_exits_2_naming_file_index_field_and_known_names(tmp_path: Path) -> None:
    d = doc()
    d["configs"][0]["config"]["loss"]["gama"] = 1.0
    path = tmp_path / "front.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(UserError, match=r"configs\[0\]\.loss\.gama.*no loss of \['cb_focal'\] takes"):
        export.read_configs(path)
    r = hpo("train", "--config", str(path))
    assert r.returncode == 2, r.stderr
    assert str(path) in r.stderr and "'configs[0].loss.gama'" in r.stderr and "beta, drw_beta, drw_start, form, gamma" in r.stderr


def test_an_export_gets_the_ordinary_file_mode(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        path = export.write(doc(), tmp_path / "front.yaml")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
