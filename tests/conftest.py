"""Shared helpers: run the real `hpo` command as a subprocess, write study files into temp dirs."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SPACES = REPO / "search_spaces"


def hpo(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """`hpo ARGS` in a fresh process (the console script's code path: hpo.cli.main)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HPO_STORAGE", None) if env is None or "HPO_STORAGE" not in env else None
    return subprocess.run([sys.executable, "-m", "hpo.cli", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def bench(name: str) -> ModuleType:
    """bench/NAME.py as a module (the benches are scripts, not a package). The benches' shared
    modules (bench/_*.py, e.g. `_common`) are loaded first under their own names, as a bench
    run as a script finds them next to it."""
    for shared in sorted((REPO / "bench").glob("_*.py")):
        if shared.stem not in sys.modules:
            sys.modules[shared.stem] = _load(shared.stem)
    return sys.modules[name] if name.startswith("_") else _load(name)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_study(folder: Path, name: str, base: str = "cb_focal_beta", **overrides: Any) -> Path:
    """A copy of search_spaces/BASE.yaml named NAME with top-level sections updated."""
    raw = yaml.safe_load((SPACES / f"{base}.yaml").read_text())
    raw["study"] = name
    for section, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(section), dict) and section != "model":
            # sections merge; a model replaces the base one (each model takes its own parameters)
            raw[section] = {**raw[section], **value}
        else:
            raw[section] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The one e2e convention: every test in a file named *_e2e.py (the real `hpo` command, Ray,
    a database server) is an e2e test, and no other is; `make test-fast` leaves them out.
    tests/test_layout.py checks that no file marks e2e by hand."""
    for item in items:
        if item.path.name.endswith("_e2e.py"):
            item.add_marker(pytest.mark.e2e)
