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


def test_a_command_whose_role_is_not_installed_says_which_extra(tmp_path: object) -> None:
    # As in the worker image: no numpy. The simulator's commands say what to install.
    script = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'numpy':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from soundfleet.cli import main\n"
        "sys.exit(main(['simulator', 'truth', '--out', '/nonexistent/x']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "install 'soundfleet[simulator]' or 'soundfleet[scoring]'" in done.stderr
    assert "Traceback" not in done.stderr
