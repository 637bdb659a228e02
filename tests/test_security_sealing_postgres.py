"""The sealing tests against PostgreSQL, one scratch database per test (skipped when no server answers)."""
from __future__ import annotations

from tests.test_security_sealing import *  # noqa: F403 - the tests and their fixtures
from tests.test_storage_postgres import database_url, test_postgres_is_really_used  # noqa: F401 - the SQLite file replaced
