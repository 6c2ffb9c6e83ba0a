"""A real PostgreSQL server for a test: `PostgresServer` and `pg_bin` of bench/_pgserver.py (one
copy, shared with bench/storage_scale.py)."""
from __future__ import annotations

from conftest import bench

_pgserver = bench("_pgserver")
PostgresServer = _pgserver.PostgresServer
pg_bin = _pgserver.pg_bin

__all__ = ["PostgresServer", "pg_bin"]
