"""docker/: no Docker engine runs here, so check what can be checked without one: the compose
file parses, and every service, command, file and folder it names exists."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO
from hpo.cli import build_parser

DOCKER = REPO / "docker"
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
RAY = str(Path(sys.executable).with_name("ray"))


def test_compose_has_the_five_roles_and_their_references_resolve() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "ray-head", "gpu-worker", "dashboard", "launcher"}
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), (name, deps)
        for secret in svc.get("secrets", []):
            assert secret in COMPOSE["secrets"]
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            assert src in COMPOSE["volumes"] or (DOCKER / src).resolve().exists(), (name, src)
    gpu = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]  # never published beyond loopback


def test_build_context_dockerfile_and_copied_paths_exist() -> None:
    build = COMPOSE["services"]["launcher"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == REPO and (context / build["dockerfile"]).is_file()
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (context / src).exists(), src


def test_the_secret_file_is_explained_and_kept_out_of_git() -> None:
    path = COMPOSE["secrets"]["postgres_password"]["file"]
    assert path == "./postgres_password.txt"
    assert "docker/postgres_password.txt" in (DOCKER / "docker-compose.yml").read_text()  # the header says how
    assert "docker/postgres_password.txt" in (REPO / ".gitignore").read_text()


def test_every_hpo_command_parses_and_its_study_file_exists() -> None:
    commands = [s["command"] for s in COMPOSE["services"].values() if s.get("command", [None])[0] == "hpo"]
    assert len(commands) == 2
    for cmd in commands:
        args = build_parser().parse_args(cmd[1:])  # exits (fails the test) on an unknown flag
        if args.command == "launch":
            assert (REPO / "search_spaces" / f"{args.study}.yaml").is_file()


def test_every_ray_start_flag_exists() -> None:
    help_text = subprocess.run([RAY, "start", "--help"], capture_output=True, text=True, timeout=60).stdout
    for svc in ("ray-head", "gpu-worker"):
        cmd = COMPOSE["services"][svc]["command"]
        assert cmd[:2] == ["ray", "start"]
        for flag in cmd[2:]:
            assert re.search(rf"{re.escape(flag.split('=')[0])}\b", help_text), flag
