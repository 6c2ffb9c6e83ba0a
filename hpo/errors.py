"""Errors the user can fix. The CLI turns `UserError` into exit code 2 and prints it as is."""
from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Bad input: a study file, a flag, a config. Its message says what, where and how to fix it."""


class SpecError(UserError):
    """A field of a study file has a bad value."""

    def __init__(self, file: str, field: str, value: Any, problem: str, fix: str = "") -> None:
        self.file, self.field, self.value = file, field, value
        msg = f"{file}: field '{field}' = {value!r}: {problem}"
        if fix:
            msg += f"\n  fix: {fix}"
        super().__init__(msg)


def unknown_name(kind: str, name: Any, known: list[str] | tuple[str, ...]) -> str:
    """One wording for every 'no such X' message, always listing the known names."""
    return f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}"
