"""A hostile platform against a real worker process: a 300 MB body and a looping list."""

from __future__ import annotations

import pytest

from benchmarks.hostile import run


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_huge_body_and_a_loop_end_their_units_and_nothing_else(admin_dsn: str) -> None:
    result = run(admin_dsn, body_mb=300, rss_ceiling_mb=200.0, others=3, timeout_s=200.0)
    assert result["checks"] == {
        "rss_under_ceiling": True,
        "huge_body_dead_with_size_reason": True,
        "loop_failed_naming_the_page": True,
        "other_units_done": True,
        "worker_alive": True,
    }, result
    assert "client_id=" not in result["loop_unit"]["last_error"]
    assert result["ok"]
