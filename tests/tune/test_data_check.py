"""The launch's data check in its own process (hpo.tune.data_check): same answer, same errors,
a driver that never imports scikit-learn, and a passed check remembered until what it read changes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, write_study
from datafiles import write_png_tree
from hpo.errors import UserError
from hpo.spec import load_spec
from hpo.train.preflight import DataSummary, check_study
from hpo.tune import data_check
from hpo.tune.data_check import DataCheck, record_key, rememberable


def test_the_check_sends_back_the_labels_and_class_names_check_study_finds(tmp_path: Path) -> None:
    spec = load_spec(write_study(tmp_path, "dc"))
    got, want = DataCheck(spec, records=None).result(), DataSummary.of(check_study(spec))
    assert got.class_names == want.class_names and got.class_counts == want.class_counts
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(got, part).y, getattr(want, part).y)


def test_bad_data_raises_the_checks_own_message_in_the_driver(tmp_path: Path) -> None:
    spec = load_spec(write_study(tmp_path, "nodata", data={"name": "cifar10", "params": {"root": str(tmp_path / "none")}}))
    with pytest.raises(UserError, match="cifar-10-batches-py") as raised:
        DataCheck(spec, records=tmp_path / "records").result()
    with pytest.raises(UserError) as direct:
        check_study(spec)
    assert str(raised.value) == str(direct.value)
    assert not (tmp_path / "records").exists()  # a failed check is never remembered: it fails every launch


def test_a_check_process_that_dies_is_an_error_naming_its_exit_code(tmp_path: Path) -> None:
    check = DataCheck(load_spec(write_study(tmp_path, "dc")), records=None)
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


def _labels(summary: DataSummary) -> list[list[int]]:
    return [getattr(summary, part).y.tolist() for part in ("train", "val", "test")]


def test_a_passed_check_is_remembered_and_the_next_launch_starts_no_check_process(tmp_path: Path) -> None:
    spec, records = load_spec(write_study(tmp_path, "dc")), tmp_path / "records"
    first = DataCheck(spec, records)
    assert first.remembered is None
    summary = first.result()
    assert first.record is not None and first.record.parent == records and first.record.is_file()
    again = DataCheck(spec, records)
    assert again.remembered is not None and again._proc is None  # noqa: SLF001 - no process was started
    assert again.result().class_names == summary.class_names and _labels(again.result()) == _labels(summary)


def test_what_the_check_read_changing_makes_it_run_again(tmp_path: Path) -> None:
    root, records = tmp_path / "imgs", tmp_path / "records"
    paths = write_png_tree(root, per_class=12)
    data = {"name": "imagefolder", "params": {"root": str(root), "image_size": 8, "channels": 1},
            "longtail": {"profile": "none"}}
    spec = load_spec(write_study(tmp_path, "folder", data=data, minority=[3]))
    before = DataCheck(spec, records).result()
    keys = {record_key(spec)}
    (root / "digit_3" / "extra.png").write_bytes(paths[0].read_bytes())  # one image more
    assert record_key(spec) not in keys
    check = DataCheck(spec, records)
    assert check.remembered is None and check.result().class_counts[3] == before.class_counts[3] + 1
    keys.add(record_key(spec))
    paths[5].write_bytes(paths[6].read_bytes())  # an image replaced
    assert record_key(spec) not in keys
    keys.add(record_key(spec))
    # the study file's fixed part: the split, the minority classes
    assert record_key(load_spec(write_study(tmp_path, "folder", data={**data, "split": {"val": 0.3, "test": 0.2}},
                                            minority=[3]))) not in keys
    assert record_key(load_spec(write_study(tmp_path, "folder", data=data, minority=[4]))) not in keys
    assert record_key(load_spec(write_study(tmp_path, "folder", data=data, minority=[3]))) in keys


def test_a_record_that_cannot_be_read_is_checked_again_and_rewritten(tmp_path: Path) -> None:
    spec, records = load_spec(write_study(tmp_path, "dc")), tmp_path / "records"
    record = records / f"{record_key(spec)}.npz"
    records.mkdir()
    record.write_bytes(b"cut short")
    check = DataCheck(spec, records)
    assert check.remembered is None
    summary = check.result()
    assert _labels(DataCheck(spec, records).remembered) == _labels(summary)


def test_only_the_most_recently_used_records_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_check, "KEEP", 2)
    summary = DataCheck(load_spec(write_study(tmp_path, "dc")), records=None).result()
    for i in range(4):
        data_check._write(tmp_path / f"{i}.npz", summary, "d")  # noqa: SLF001
    assert sorted(f.name for f in tmp_path.glob("*.npz")) == ["2.npz", "3.npz"]
    (tmp_path / "a_file").write_text("")
    data_check._write(tmp_path / "a_file" / "x.npz", summary, "d")  # noqa: SLF001 - cannot be written: no error, no record
    assert list(tmp_path.glob("**/*.part")) == []


def test_a_study_of_timms_pretrained_weights_is_checked_every_launch(tmp_path: Path) -> None:
    # the check also finds timm's weights in the Hugging Face cache, which no file the study names shows
    pretrained = load_spec(write_study(tmp_path, "pre", model={"name": "timm", "arch": "resnet18", "pretrained": True}))
    local = load_spec(write_study(tmp_path, "dc"))
    assert not rememberable(pretrained) and rememberable(local)
    check = DataCheck(pretrained, tmp_path / "records")
    try:
        assert check.record is None
    finally:
        check.stop()


def test_the_check_sends_back_the_content_digest_and_a_remembered_pass_keeps_it(tmp_path: Path) -> None:
    from hpo.tune.data_check import content_digest

    spec, records = load_spec(write_study(tmp_path, "dc")), tmp_path / "records"
    first = DataCheck(spec, records)
    first.result()
    assert first.digest == content_digest(check_study(spec)) and first.result() is first.result()
    assert first.remembered is None  # checked, not remembered: the launch says which
    assert DataCheck(spec, records).digest == first.digest  # read back from the record, no process
    (records / f"{record_key(spec)}.npz").write_bytes(b"")  # a record without a digest (or cut short) is checked again
    assert DataCheck(spec, records).remembered is None


def test_the_content_digest_follows_the_pixels_and_labels_not_the_files(tmp_path: Path) -> None:
    from hpo.train.splits import prepare
    from hpo.tune.data_check import content_digest

    paths = write_png_tree(tmp_path / "imgs", per_class=12)
    data = {"name": "imagefolder", "seed": 0, "params": {"root": str(tmp_path / "imgs"), "image_size": 8, "channels": 1},
            "longtail": {"profile": "none", "ratio": 10, "minority_fraction": 0.5},
            "split": {"val": 0.2, "test": 0.2, "val_from": "test"}}
    before = content_digest(prepare(data))
    os.utime(paths[3], ns=(1, 1))
    assert content_digest(prepare(data)) == before  # touched, the same pixels
    paths[3].write_bytes(paths[4].read_bytes())
    assert content_digest(prepare(data)) != before  # an image replaced in place
