"""What a researcher reads before submitting: each kind's spec fields, from the schemas."""

from __future__ import annotations

import subprocess
import sys

from schemas.fields import field_rows, text_table
from schemas.jobs import SPEC_MODELS


def test_field_rows_read_types_defaults_and_limits() -> None:
    rows = {r.name: r for r in field_rows(SPEC_MODELS["play_poll"].model_json_schema())}
    assert rows["track_ids"].default == "required"
    assert rows["track_ids"].limits == "at least 1 items, at most 100000 items, each >= 1"
    assert (rows["for_s"].type, rows["for_s"].default) == ("number", "0")
    nested = field_rows(SPEC_MODELS["user_tracks"].model_json_schema())
    assert nested[1].type.startswith("TimelineSpec object (lists, timestamps) or null")
    assert "user_ids: list of integer  [required]" in text_table(nested)


def test_submit_kind_help_lists_its_spec_fields() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "soundfleet.cli", "submit", "track_timelines", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "track_ids: list of integer  [required]" in done.stdout
    assert 'timestamps: one of exact | page  ["exact"]' in done.stdout
    assert "at most 100000 items" in done.stdout
