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


# --- where an export is written: regular files only, atomically, nothing left behind ---

def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_export_onto_a_symlink_is_refused_and_the_link_and_its_target_stay(tmp_path: Path) -> None:
    """Neither replaced by a regular file nor followed (a link to /dev/stdout or /etc/passwd alike)."""
    target = tmp_path / "target.yaml"
    target.write_text("kept")
    for name, to in (("link.yaml", target), ("stdout.yaml", Path("/dev/null"))):
        (tmp_path / name).symlink_to(to)
        with pytest.raises(UserError, match=rf"--out .*{name}: a symlink \(to {to}\); hpo export writes regular "
                                            "files and neither replaces nor follows links"):
            export.write(doc(), tmp_path / name)
        assert (tmp_path / name).is_symlink() and Path((tmp_path / name).readlink()) == to
    assert target.read_text() == "kept" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["folder", "fifo", "empty"])
def test_an_export_onto_a_folder_a_fifo_or_an_empty_path_is_refused_leaving_nothing(tmp_path: Path,
                                                                                     kind: str) -> None:
    import os
    import stat

    out = tmp_path / "out.yaml"
    if kind == "folder":
        out.mkdir()
    elif kind == "fifo":
        os.mkfifo(out)
    match = {"folder": "a folder, not a regular file", "fifo": "a device, pipe or socket, not a regular file",
             "empty": r"--out '': give a file path"}[kind]
    with pytest.raises(UserError, match=match):
        export.write(doc(), "" if kind == "empty" else out)
    assert _leftovers(tmp_path) == []
    if kind != "empty":
        mode = os.lstat(out).st_mode
        assert stat.S_ISDIR(mode) if kind == "folder" else stat.S_ISFIFO(mode)


def test_a_write_that_fails_midway_leaves_no_temp_file_and_is_one_storage_line(tmp_path: Path) -> None:
    """A file-size limit (as a full disk) stops the write after the temp file exists: it is removed."""
    import subprocess
    import sys

    code = ("import resource, signal; from hpo.study import export; from hpo.errors import storage_failure\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            "big = {'configs': [{'config': {'x': 'y' * 100000}}]}\n"
            f"try:\n    export.write(big, {str(tmp_path / 'front.yaml')!r})\n"
            "except OSError as exc:\n    print('FAILED:', storage_failure(exc))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "FAILED: file too large" in r.stdout, r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []


def test_hpo_export_onto_a_symlink_exits_2_with_one_line(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_optuna_seam import make_study

    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    make_study(url, "kept", 5)
    (tmp_path / "front.yaml").symlink_to(tmp_path / "hpo.db")
    r = hpo("export", "--study", "kept", "--storage", url, "--out", str(tmp_path / "front.yaml"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "a symlink" in r.stderr, r.stderr
    assert (tmp_path / "front.yaml").is_symlink() and _leftovers(tmp_path) == []


# --- what `hpo train --config` reads: one line on any broken export ---

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "configs: [*i]\n"


@pytest.mark.parametrize("name, text, problem", [
    ("broken.yaml", "configs: [\n", r"not valid YAML: .*\(line 2, column 1\)"),
    ("broken.json", '{"configs": [', r"not valid JSON: Expecting value \(line 1, column 14\)"),
    ("broken.csv", 'config\n"{\n', r"not valid CSV: "),
    ("nocolumn.csv", "study,trial\ns,1\n", r"no 'config' column \(columns: \['study', 'trial'\]\)"),
    ("badcell.csv", "config\n{oops\n", r"'configs\[0\]\.config' = '\{oops': not a JSON config"),
    ("bomb.yaml", BOMB, r"anchors and aliases .&a / \*a. are not allowed"),
    ("deep.json", "[" * 100000 + "]" * 100000, r"nested too deeply to be an export"),
    ("binary.yaml", b"\xff\xfe\x00configs".decode("latin-1"), r"not UTF-8 text"),
])
def test_a_broken_export_is_one_error_naming_the_file(tmp_path: Path, name: str, text: str, problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1") if name == "binary.yaml" else text.encode())
    with pytest.raises(UserError, match=problem):
        export.read_configs(path)


def test_hpo_train_on_a_broken_or_hostile_export_exits_2_with_one_line(tmp_path: Path) -> None:
    secret = tmp_path / "secret" / "shadow.yaml"
    secret.parent.mkdir()
    secret.write_text("root:Zq9-not-to-echo:0:0\n")
    exports = tmp_path / "exports"  # the export's folder; the secret lies beside it, not in it
    exports.mkdir()
    (exports / "front.yaml").symlink_to(secret)
    (exports / "bomb.yaml").write_text(BOMB)
    (exports / "nocol.csv").write_text("study,trial\ns,1\n")
    for name, words in (("front.yaml", "outside the folder"), ("bomb.yaml", "anchors and aliases"),
                        ("nocol.csv", "no 'config' column")):
        r = hpo("train", "--config", str(exports / name), cwd=tmp_path, timeout=60)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert str(exports / name) in r.stderr and "Zq9-not-to-echo" not in r.stderr


def test_a_value_used_twice_is_written_in_full_not_as_a_yaml_alias_hpo_train_would_refuse(tmp_path: Path) -> None:
    from hpo.study import export

    config = {"train": {"lr": 0.1}}
    doc = {"study": "s", "configs": [{"trial": 0, "config": config}, {"trial": 0, "config": config}]}
    text = Path(export.write(doc, str(tmp_path / "e.yaml"), "yaml")).read_text()
    assert "&" not in text and "*" not in text
    first, second = export.read_configs(str(tmp_path / "e.yaml"))  # read as `hpo train` reads it
    assert first == second and first["train"]["lr"] == 0.1
