"""The CLI stays light: --help and study validation import neither torch nor ray."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO, SPACES

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
    for cmd in ("launch", "status", "export", "dashboard", "train"):
        assert cmd in r.stdout
