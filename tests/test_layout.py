"""The package layout keeps its promises: which package may import what, short functions, no
private Optuna imports, no references to files the repository does not have."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PKG = REPO / "hpo"
HEAVY = {"torch", "torchvision", "timm", "kornia"}


def imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions (dotted names)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def files(sub: str = "") -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def roots(path: Path) -> set[str]:
    return {m.split(".")[0] for m in imports(path)}


def test_spec_imports_nothing_heavy() -> None:
    for f in files("spec"):
        assert not roots(f) & (HEAVY | {"ray", "optuna"}), f


@pytest.mark.parametrize("module, home", [("ray", "tune"), *((m, "train") for m in sorted(HEAVY))])
def test_only_its_package_imports_a_heavy_library(module: str, home: str) -> None:
    offenders = [str(f.relative_to(REPO)) for f in files() if module in roots(f)
                 and f.relative_to(PKG).parts[0] != home]
    assert offenders == [], f"{module} is imported outside hpo/{home}/"


def test_no_private_optuna_imports() -> None:
    for f in [*files(), *(REPO / "bench").glob("*.py"), *(REPO / "tests").rglob("*.py")]:
        assert not [m for m in imports(f) if m.startswith("optuna._")], f


def test_no_function_is_longer_than_60_lines() -> None:
    long = [f"{f.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for f in files() for n in ast.walk(ast.parse(f.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
    assert long == []


def test_no_reference_to_a_design_file_the_repository_lacks() -> None:
    for f in [*files(), REPO / "README.md", *(REPO / "bench").glob("*.py")]:
        assert "DESIGN.md" not in f.read_text(), f
