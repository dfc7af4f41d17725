"""Fuzz the coordinator's API from its own OpenAPI document (schemathesis).

Every operation is called with generated requests under each role's key and with none;
no answer may be a 5xx and every answer must conform to the document (status codes,
content type, body schema). About 1,500 requests in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from runtime import processes
from runtime.database import DatabaseTarget, env_with_database
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import create_key

ROLES = ("researcher", "worker", "admin")
# Cross-field rules (id_to > id_from, a sweep's unit count) cannot be written in JSON
# Schema, so a schema-valid body may rightly get a 422 naming the field.
SKIPPED = [positive_data_acceptance]


@pytest.fixture(scope="module")
def coordinator(
    admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    from soundfleet.fleet import drop_database, scratch_database

    dsn = scratch_database(admin_dsn, "soundfleet_fuzz")
    migrate_target(DatabaseTarget(dsn, embedded=False))
    log_dir = tmp_path_factory.mktemp("fuzz")
    service = processes.start(
        "coordinator",
        processes.soundfleet_argv("coordinator", "--port", "0"),
        log_dir=Path(log_dir),
        # Generated lease calls may ask to be held 30 s: held briefly, the run stays short.
        env={**env_with_database(dsn), "SOUNDFLEET_COORDINATOR_LEASE_WAIT_MAX_S": "0.2"},
    )
    try:
        assert service.url is not None
        keys = {role: create_key(dsn, role, f"fuzz-{role}") for role in ROLES}
        yield {"url": service.url, **keys}
    finally:
        processes.stop(service, grace_s=10)
        assert "Traceback" not in service.tail(200), service.tail(60)
        drop_database(admin_dsn, dsn)


def test_no_5xx_and_conforming(coordinator: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(coordinator["url"] + "/openapi.json")
    requests = 0
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal requests
            for role in (*ROLES, None):
                headers = {"Authorization": f"Bearer {coordinator[role]}"} if role else {}
                case.call_and_validate(headers=headers, excluded_checks=SKIPPED)
                requests += 1

        fuzz()
    assert operations >= 10
    assert requests >= 1_000, requests
