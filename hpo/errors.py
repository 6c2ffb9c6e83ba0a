"""Errors the user can fix. The CLI turns `UserError` into exit code 2 and prints it as is."""
from __future__ import annotations

import reprlib
from typing import Any

SHOWN_CHARS = 120  # the most of a value an error message shows


class _Shown(reprlib.Repr):
    """reprlib's bounded repr, but a long string keeps only its start (reprlib keeps both ends)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 8, 8, 8, 8
        self.maxlong = self.maxother = self.limit = limit

    def repr_str(self, x: str, level: int) -> str:
        return repr(x) if len(x) <= self.limit else repr(x[:self.limit]) + "..."


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """`repr(value)`, at most about `limit` characters. `reprlib` stops at a few items and levels,
    so a huge value (a whole file read as one string, a deeply nested mapping) costs no more than a
    small one, and a message never echoes more of the input than the offending value's start."""
    text = _Shown(limit).repr(value)
    return text if len(text) <= limit + 8 else text[:limit] + "..."


class UserError(Exception):
    """Bad input: a study file, a flag, a config. Its message says what, where and how to fix it."""


class SpecError(UserError):
    """A field of a study file has a bad value."""

    def __init__(self, file: str, field: str, value: Any, problem: str, fix: str = "") -> None:
        self.file, self.field, self.value = file, field, value
        where = field if len(field) <= 2 * SHOWN_CHARS else field[:2 * SHOWN_CHARS] + "..."  # a key may be huge too
        msg = f"{file}: field '{where}' = {shown(value)}: {problem}"
        if fix:
            msg += f"\n  fix: {fix}"
        super().__init__(msg)


def unknown_name(kind: str, name: Any, known: list[str] | tuple[str, ...]) -> str:
    """One wording for every 'no such X' message, always listing the known names."""
    return f"unknown {kind} {shown(name)}; known: {', '.join(sorted(known))}"


# errno values of a storage that cannot take writes: disk full, file too large, quota, read-only
_FULL_ERRNOS = {28: "no space left on the device", 27: "file too large for this process's limit",
                122: "disk quota exceeded", 30: "read-only file system"}
# SQLite's words for the same conditions (sqlite3.OperationalError, wrapped by SQLAlchemy)
_SQLITE_FAILURES = ("database or disk is full", "disk i/o error", "attempt to write a readonly database",
                    "unable to open database file")

# PostgreSQL's SQLSTATE codes for the same (psycopg errors carry `.sqlstate`): the server's disk is
# full, or the database takes no writes (a hot standby, default_transaction_read_only)
_PG_FAILURES = {"53100": "the PostgreSQL server's disk is full",
                "25006": "the PostgreSQL database is read-only (a read-only transaction or a standby)"}


def storage_failure(exc: BaseException) -> str | None:
    """One line saying why the storage (database, artifacts, export file) took no write, or None
    when `exc` is not such a failure. Not the user's input: the CLI exits 1 on it, not 2."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # SQLAlchemy wraps the driver's error
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            where = f" ({exc.filename})" if exc.filename else ""
            return f"{_FULL_ERRNOS[exc.errno]}{where}"
        if getattr(exc, "sqlstate", None) in _PG_FAILURES:
            return _PG_FAILURES[exc.sqlstate]  # type: ignore[attr-defined]
        text = str(exc).lower()
        hit = next((s for s in _SQLITE_FAILURES if s in text), None)
        if hit and type(exc).__name__ == "OperationalError":
            return f"the SQLite storage failed: {hit}"
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None
