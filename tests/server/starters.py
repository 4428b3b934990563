"""The service starters of the server tests, kept in :mod:`spheroseg_testing` (the benchmarks use them too).

Re-exported here, beside the server tests that use them.
"""

from __future__ import annotations

from spheroseg_testing.ports import free_port
from spheroseg_testing.postgres import Postgres, find_pg_bin, start_postgres

__all__ = ["Postgres", "find_pg_bin", "free_port", "start_postgres"]
