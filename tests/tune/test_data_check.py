"""The launch's data check in its own process (hpo.tune.data_check): same answer, same errors,
and a driver that never imports scikit-learn."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, write_study
from hpo.errors import UserError
from hpo.spec import load_spec
from hpo.train.preflight import DataSummary, check_study
from hpo.tune.data_check import DataCheck


def test_the_check_sends_back_the_labels_and_class_names_check_study_finds(tmp_path: Path) -> None:
    spec = load_spec(write_study(tmp_path, "dc"))
    got, want = DataCheck(spec).result(), DataSummary.of(check_study(spec))
    assert got.class_names == want.class_names and got.class_counts == want.class_counts
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(got, part).y, getattr(want, part).y)


def test_bad_data_raises_the_checks_own_message_in_the_driver(tmp_path: Path) -> None:
    spec = load_spec(write_study(tmp_path, "nodata", data={"name": "cifar10", "params": {"root": str(tmp_path / "none")}}))
    with pytest.raises(UserError, match="cifar-10-batches-py") as raised:
        DataCheck(spec).result()
    with pytest.raises(UserError) as direct:
        check_study(spec)
    assert str(raised.value) == str(direct.value)


def test_a_check_process_that_dies_is_an_error_naming_its_exit_code(tmp_path: Path) -> None:
    check = DataCheck(load_spec(write_study(tmp_path, "dc")))
    check._proc.kill()  # noqa: SLF001 - as the kernel's OOM killer would
    with pytest.raises(RuntimeError, match="ended without an answer .exit code -9.*hpo check"):
        check.result()


def test_the_launch_driver_imports_no_scikit_learn() -> None:
    # scikit-learn was ~1 s of the driver's start; it loads in the data check's process, in trials
    # and in `hpo check`, never in the modules the driver imports
    code = ("import sys; import hpo.cli, hpo.tune.launch, hpo.train.preflight, hpo.train.metrics, hpo.train.splits, "
            "hpo.views.notes, hpo.tune.data_check; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
