"""The ``soundfleet`` command line.

Each service contributes its sub-commands through a ``register(subparsers)`` function in
one of :data:`COMMAND_MODULES`; errors of the :class:`~schemas.errors.SoundfleetError`
hierarchy end the program with one line and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from schemas.errors import SoundfleetError
from soundfleet.requirements import check_startup, describe_validation_error

COMMAND_MODULES = [
    "coordinator.cli",
    "crawler.cli",
    "soundfleet.cli_db",
    "soundfleet.cli_demo",
    "soundfleet.cli_research",
    "scoring.cli",
    "simulator.cli",
]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every service's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="soundfleet",
        description="A crawler fleet for SoundCloud's api-v2 with built-in scoring models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        # SOUNDFLEET_REQUIRE (set by containers): a missing secret stops us here, by name.
        check_startup()
        return handler(args)
    except SoundfleetError as exc:
        print(f"soundfleet: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        # Settings a command validates itself: still one line, never a traceback.
        print(
            f"soundfleet: error: invalid setting {describe_validation_error(exc)}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("soundfleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
