"""The CLI stays light: --help and study validation import neither torch nor ray."""
from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

from conftest import REPO, SPACES, hpo
from hpo.study import coordination as co

PROBE = """
import sys
from hpo.cli import main
{body}
heavy = sorted(m for m in ("torch", "ray", "timm", "torchvision") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def _heavy_modules(body: str) -> str:
    r = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_help_imports_neither_torch_nor_ray() -> None:
    body = "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0"
    assert _heavy_modules(body) == "HEAVY="


def test_spec_validation_imports_neither_torch_nor_ray() -> None:
    body = f"from hpo.spec import find_spec\nfind_spec('cb_focal_beta', {str(SPACES)!r})"
    assert _heavy_modules(body) == "HEAVY="


def test_console_script_help_lists_the_commands() -> None:
    r = subprocess.run([sys.executable, "-m", "hpo.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("launch", "studies", "delete", "status", "export", "dashboard", "train"):
        assert cmd in r.stdout


# `hpo studies` / `hpo delete`, on a SQLite file made with Optuna directly (no Ray, no training)

def _make_studies(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = FileSystemArtifactStore(str(_artifacts(tmp_path)))
    a = optuna.create_study(study_name="a", storage=url, directions=["maximize", "minimize"])
    b = optuna.create_study(study_name="b", storage=url)
    for study in (a, b):  # the first trial of each study has an artifact file (stored while it runs, as hpo does)
        trial = study.ask()
        (tmp_path / f"{study.study_name}.txt").write_text(study.study_name)
        upload_artifact(artifact_store=store, file_path=str(tmp_path / f"{study.study_name}.txt"), study_or_trial=trial)
        study.tell(trial, (trial.suggest_float("x", 0, 1), 1.0) if study is a else 1.0)
    a.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    a.ask()  # left RUNNING
    a.enqueue_trial({"x": 0.5})  # WAITING
    (tmp_path / "storage" / "ray" / "a").mkdir(parents=True)
    return url


def _artifacts(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder


def _names(url: str) -> list[str]:
    return sorted(s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False))


def test_delete_yes_removes_the_study_its_artifacts_and_ray_folder_and_says_what(tmp_path: Path) -> None:
    url = _make_studies(tmp_path)
    kept = get_all_artifact_meta(optuna.load_study(study_name="b", storage=url))
    r = hpo("delete", "--study", "a", "--storage", url, "--artifacts", str(_artifacts(tmp_path)), "--yes",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _names(url) == ["b"]
    assert [p.read_text() for p in _artifacts(tmp_path).iterdir()] == ["b"]  # the other study's file stays
    assert not (tmp_path / "storage" / "ray" / "a").exists()
    assert "removed:" in r.stdout and "study 'a'" in r.stdout and "5 trials" in r.stdout
    assert "1 artifact files" in r.stdout and str(tmp_path / "storage" / "ray" / "a") in r.stdout
    assert kept == get_all_artifact_meta(optuna.load_study(study_name="b", storage=url))


@pytest.mark.parametrize("answer", ["n", "y"])
def test_delete_asks_on_a_terminal(tmp_path: Path, answer: str) -> None:
    url = _make_studies(tmp_path)
    main, tty = pty.openpty()
    try:
        os.write(main, f"{answer}\n".encode())
        env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"}
        r = subprocess.run([sys.executable, "-m", "hpo.cli", "delete", "--study", "a", "--storage", url],
                           stdin=tty, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        os.close(main)
        os.close(tty)
    assert "Delete study 'a'? [y/N]" in r.stdout and "5 trials" in r.stdout
    if answer == "n":
        assert r.returncode == 1 and "nothing deleted" in r.stdout and _names(url) == ["a", "b"]
    else:
        assert r.returncode == 0 and "removed:" in r.stdout and _names(url) == ["b"]


def orphan_study(url: str, n: int = 30) -> None:
    """A study with one RUNNING trial whose launcher died (a killed `hpo launch`)."""
    import optuna

    from hpo.study import coordination as co
    from hpo.study import optuna_seam
    from hpo.study.storage import open_storage

    backing = open_storage(url)
    study = optuna.create_study(study_name="orph", storage=backing, directions=["maximize", "maximize"])
    study.set_user_attr("hpo_objectives", [{"name": "minority_f1", "direction": "maximize"},
                                           {"name": "macro_acc", "direction": "maximize"}])
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "dead", {"host": "elsewhere", "pid": 1, "heartbeat": 0.0})
    # all on the front; written as Optuna's add_trials writes them, in a few INSERTs (3,000 trials:
    # seconds fewer; tests/study/test_optuna_seam.py checks this writer against Optuna's)
    optuna_seam.add_finished_trials(backing, study, [optuna.trial.create_trial(values=[i / n, 1 - i / n])
                                                     for i in range(n)])
    study.ask().set_user_attr(co.ATTR_OWNER, "dead")


def test_status_marks_running_trials_whose_launcher_is_gone(sqlite_url: str) -> None:
    from conftest import hpo

    orphan_study(sqlite_url)
    r = hpo("status", "--study", "orph", "--storage", sqlite_url)
    assert r.returncode == 0, r.stderr
    assert "RUNNING trials [30] belong to a launcher that is gone" in r.stdout


# --- flags and storages that are wrong: exit 2 or the storage's one line, nothing created, nothing left running ---

def test_a_dashboard_port_out_of_range_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    for port in ("70000", "0", "-1"):
        r = hpo("dashboard", "--port", port, "--storage", f"sqlite:///{tmp_path / 'hpo.db'}", cwd=tmp_path)
        assert r.returncode == 2 and "is not a TCP port: give 1 to 65535" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "hpo.db").exists()


@pytest.mark.parametrize("storage", ["flag", "default"])
def test_status_on_a_sqlite_file_that_does_not_exist_exits_2_and_creates_nothing(tmp_path: Path,
                                                                                 storage: str) -> None:
    args = ["--storage", f"sqlite:///{tmp_path / 'typo.db'}"] if storage == "flag" else []
    missing = tmp_path / "typo.db" if storage == "flag" else tmp_path / "storage" / "hpo.db"
    for command in (["status"], ["export", "--out", str(tmp_path / "front.yaml")]):
        r = hpo(*command, "--study", "x", *args, cwd=tmp_path)
        assert r.returncode == 2 and f"no SQLite file {missing}; nothing to read there" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []  # neither the database nor ./storage


def _ray_processes_of(mark: str) -> list[str]:
    """Processes whose environment carries MARK: the launch's own and every Ray process it started."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80])
        except OSError:  # gone meanwhile, or a zombie
            continue
    return found


def _read_only_launch(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`hpo launch` on a study whose SQLite file lies on a read-only mount (root ignores file modes)."""
    import sqlite3

    folder = tmp_path / "results"
    folder.mkdir()
    sqlite3.connect(folder / "hpo.db").close()
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "hpo.cli", "launch",
                           "--study", "early", "--spaces-dir", str(tmp_path / "spaces"),
                           "--storage", f"sqlite:///{folder / 'hpo.db'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _can_mount_read_only() -> bool:
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"],
                       capture_output=True)
    return r.returncode == 0
