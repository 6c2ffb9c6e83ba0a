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


# --- layers: spec < train < study < views < tune < cli ----------------------------------------------
# hpo/errors.py is under every layer (the error types and their wording, importing nothing of hpo);
# hpo/catalog_build.py is over every one (it reads every registry to write spec/catalog.json, and
# nothing imports it).
LAYERS = {"errors": 0, "spec": 1, "train": 2, "study": 3, "views": 4, "tune": 5, "cli": 6, "catalog_build": 7}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(f): f for f in files()}


def hpo_imports(path: Path) -> set[str]:
    """The hpo modules a file imports, at top level or inside functions: `from hpo.study import
    pareto` is hpo.study.pareto, `from hpo.spec import StudySpec` is hpo.spec (its __init__)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "hpo")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "hpo":
            out.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                       for a in node.names)
    return out - {module_name(path), "hpo"}


def layer(module: str) -> int:
    return LAYERS[module.split(".")[1]]


def test_every_hpo_module_has_a_layer() -> None:
    assert [m for m in MODULES if m != "hpo" and m.split(".")[1] not in LAYERS] == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    up = [f"{m} -> {t}" for m, f in MODULES.items() if m != "hpo"
          for t in sorted(hpo_imports(f)) if layer(t) > layer(m)]
    assert up == [], "spec < train < study < views < tune < cli: move the name down, or the code up"


def test_no_import_circles() -> None:
    graph = {m: hpo_imports(f) & MODULES.keys() for m, f in MODULES.items()}
    circles = []
    for start in graph:  # a path from one of start's imports back to start
        seen, todo = set(), [(t, [start, t]) for t in graph[start]]
        while todo:
            node, path = todo.pop()
            if node == start:
                circles.append(" -> ".join(path))
                break
            if node not in seen:
                seen.add(node)
                todo += [(t, path + [t]) for t in graph[node]]
    assert circles == []


# --- one seam each for Optuna's and Ray's private API -------------------------------------------------
SEAMS = {PKG / "study" / "optuna_seam.py", PKG / "tune" / "ray_seam.py"}
# private names used outside the seams, and why each may be
ALLOWED_PRIVATE = {
    # argparse has no public name for the type `add_subparsers` returns; used in type hints only
    ("hpo/cli.py", "argparse._SubParsersAction"),
    # CIFAR's pickles name numpy's private array rebuilders; the restricted unpickler hands out
    # numpy's own ones (under either module name numpy has had) and nothing else
    ("hpo/train/sources/unpickle.py", "getattr(np, '_core', None)"),
    ("hpo/train/sources/unpickle.py", "core.numeric._frombuffer"),
    ("hpo/train/sources/unpickle.py", "core.multiarray._reconstruct"),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> set[str]:
    """`x._name` where x is not self or cls, and getattr / setattr / hasattr(x, "_name"); and
    `self._name` where this file neither assigns nor defines `_name` (a base class's private
    attribute, as a subclass of another library's class would read it)."""
    tree = ast.parse(path.read_text())
    own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    own |= {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    own |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and _private(n.attr):
            on_self = isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")
            if not on_self or n.attr not in own:
                out.add(ast.unparse(n))
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "setattr", "hasattr")
              and len(n.args) > 1 and isinstance(n.args[1], ast.Constant) and _private(str(n.args[1].value))):
            out.add(ast.unparse(n))
    return out


def test_private_attributes_are_used_only_in_the_optuna_and_ray_seams() -> None:
    found = {(str(f.relative_to(REPO)), use) for f in [*files(), *(REPO / "bench").glob("*.py")]
             if f not in SEAMS for use in private_uses(f)}
    assert found - ALLOWED_PRIVATE == set(), "a private attribute of Optuna or Ray belongs in its seam module"


def test_the_private_use_check_catches_what_it_is_for(tmp_path: Path) -> None:
    """The check above sees each way hpo once reached into Optuna and Ray, and passes a class's
    own private attributes."""
    path = tmp_path / "probe.py"
    path.write_text("class S(OptunaSearch):\n    def f(self, study, trial):\n        self._mine = 1\n"
                    "        return (study._storage, trial._trial_id, getattr(study, '_storage'), self._ot_trials,\n"
                    "                self._mine, self._g())\n\n    def _g(self):\n        return 0\n")
    assert private_uses(path) == {"study._storage", "trial._trial_id", "getattr(study, '_storage')", "self._ot_trials"}


def test_rays_loggers_are_named_only_in_the_ray_seam() -> None:
    """Tune's logger names are its internals: hpo quietens them through hpo.tune.ray_seam."""
    named = [f"{f.relative_to(REPO)}:{n.lineno}" for f in files() if f not in SEAMS
             for n in ast.walk(ast.parse(f.read_text()))
             if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("getLogger") and n.args
             and isinstance(n.args[0], ast.Constant) and str(n.args[0].value).split(".")[0] == "ray"]
    assert named == []


# --- one e2e convention -------------------------------------------------------------------------------

def test_e2e_tests_are_the_files_named_e2e_and_nothing_marks_them_by_hand() -> None:
    """A test that runs the real `hpo` command, Ray or a database server goes in a *_e2e.py file;
    tests/conftest.py marks every test there e2e (`make test-fast` leaves them out). A hand-written
    `pytest.mark.e2e` elsewhere would make a second convention, and one in an *_e2e.py file a
    redundant one."""
    tests = REPO / "tests"
    marked = [str(f.relative_to(REPO)) for f in tests.rglob("test_*.py")
              for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Attribute) and ast.unparse(n) == "pytest.mark.e2e"]
    assert marked == []
    assert "_e2e.py" in (tests / "conftest.py").read_text()
