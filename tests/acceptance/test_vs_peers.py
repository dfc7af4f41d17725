"""The peers benchmark end to end at a small size: every contestant lands every id."""

from __future__ import annotations

import pytest
import uvloop

from benchmarks import vs_peers


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_peer_lands_every_id_in_its_own_database(admin_dsn: str) -> None:
    args = vs_peers.parse_args(["--ids", "1500", "--concurrency", "16", "--repeats", "2"])
    result = uvloop.run(vs_peers.main_async(args, admin_dsn))
    round_, second = result["rounds"]
    # the second round runs the other way round (Scrapy runs in the first only)
    assert round_["order"] == [
        "bare", "oneoff", "oneoff_2", "scrapy", "soundfleet_1", "soundfleet_2"
    ]  # fmt: skip
    assert second["order"] == ["soundfleet_2", "soundfleet_1", "oneoff_2", "oneoff", "bare"]
    assert all(second[k]["rows_landed"] == 1500 for k in ("oneoff", "soundfleet_1"))
    assert round_["oneoff_2"]["processes"] == 2
    for name in ("oneoff", "oneoff_2", "scrapy", "soundfleet_1", "soundfleet_2"):
        assert round_[name]["rows_landed"] == 1500, (name, round_[name])
        assert round_[name]["users_per_s"] > 0
        assert round_[name]["cpu_us_per_user"]["simulator"] > 0
    assert round_["bare"]["statuses"].keys() == {"200", "404"}
    assert result["targets"]["rows_complete"] is True
    assert set(result["summary"]) >= {
        "soundfleet_1_over_oneoff",
        "soundfleet_2_over_oneoff",
        "soundfleet_2_over_scrapy",
        "soundfleet_2_over_oneoff_2",
    }
