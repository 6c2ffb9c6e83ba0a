"""The documentation stays true to the code: the README stays a short guide, every link in it and in
docs/ resolves (anchors included), the study-file reference is what the declarations say, every
bench, module and command is documented, and the README's minimal study file passes `hpo check`."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO, hpo

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, REPO / "CHANGELOG.md", REPO / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _prose(page: Path) -> str:
    """The page without its fenced code blocks (a link in code is not a link)."""
    return FENCE.sub("", page.read_text())


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", _prose(page), re.M)}


def _local_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(page)) if not re.match(r"[a-z]+:", t)]


def _make_study_files() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_study_files", DOCS / "make_study_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_guide_under_250_lines() -> None:
    assert len(README.read_text().splitlines()) < 250


def test_the_readme_links_every_docs_page() -> None:
    linked = {Path(t.split("#")[0]).name for t in _local_links(README) if t.startswith("docs/")}
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name not in linked)
    assert not missing, f"docs pages the README's index does not link: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_local_link_resolves_anchor_included(page: Path) -> None:
    broken = []
    for target in _local_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{page.name}: {broken}"


def test_study_files_reference_is_what_the_declarations_say() -> None:
    """docs/study-files.md's generated half equals what schema.py and catalog.json generate now."""
    page = (DOCS / "study-files.md").read_text()
    module = _make_study_files()
    assert module.BEGIN in page, "the generated reference is missing: run docs/make_study_files.py"
    assert page == module.rewritten(page), "docs/study-files.md is stale: run .venv/bin/python docs/make_study_files.py"


def test_study_files_reference_names_every_registered_entry() -> None:
    import json

    page = (DOCS / "study-files.md").read_text()
    catalog = json.loads((REPO / "hpo" / "spec" / "catalog.json").read_text())
    missing = [f"{kind} {name}" for kind, entries in catalog.items() for name, entry in entries.items()
               if f"#### {kind} `{name}`" not in page
               or any(f"| `{option}` |" not in page for option in entry["options"])]
    assert not missing


def test_every_bench_script_is_in_benchmarks_md() -> None:
    page = (DOCS / "benchmarks.md").read_text()
    scripts = [p.name for p in sorted((REPO / "bench").glob("*.py")) if not p.name.startswith("_")]
    assert scripts, "no bench scripts found"
    missing = [s for s in scripts if f"### `{s}`" not in page]
    assert not missing, f"bench scripts without a section in docs/benchmarks.md: {missing}"


def test_every_hpo_module_is_named_in_design_md() -> None:
    page = (DOCS / "design.md").read_text()
    modules = sorted({p.stem if p.name != "__init__.py" else p.parent.name
                      for p in (REPO / "hpo").rglob("*.py") if p.name != "__init__.py" or p.parent.parent.name == "hpo"})
    missing = [m for m in modules if not re.search(rf"`[^`]*\b{m}\b[^`]*`", page)]
    assert not missing, f"modules docs/design.md's layout table does not name: {missing}"


def test_every_cli_command_is_in_the_readme_commands_table() -> None:
    usage = hpo("--help")
    commands = re.search(r"\{([a-z,-]+)\}", usage.stdout).group(1).split(",")
    assert "launch" in commands, usage.stdout
    table = [line for line in README.read_text().splitlines() if line.startswith("| `hpo ")]
    missing = [c for c in commands if not any(line.startswith(f"| `hpo {c}") for line in table)]
    assert not missing, f"hpo sub-commands missing from the README's commands table: {missing}"


def test_the_readmes_minimal_study_file_passes_hpo_check(tmp_path: Path) -> None:
    section = README.read_text().split("## A minimal study file", 1)[1]
    study = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "minimal.yaml").write_text(study)
    done = hpo("check", "--study", "minimal", "--spaces-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout
