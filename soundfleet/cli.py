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

from runtime.requirements import check_startup, describe_validation_error
from schemas.errors import SoundfleetError

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
    except ModuleNotFoundError as exc:
        # An image or a slim install carries one role's libraries (pyproject's extras).
        extras = _EXTRAS_OF.get((exc.name or "").split(".")[0])
        if extras is None:
            raise
        which = " or ".join(f"'soundfleet[{e}]'" for e in (*extras, "all"))
        print(
            f"soundfleet: error: this command needs {exc.name!r}, which this installation "
            f"lacks: install {which}",
            file=sys.stderr,
        )
        return 1


# The extras that bring a module a command may miss in a one-role installation.
_SCORING = ("scoring",)
_EXTRAS_OF = {
    "numpy": ("simulator", "scoring"),
    "pyarrow": ("simulator", "scoring"),
    "scipy": _SCORING,
    "sklearn": _SCORING,
    "igraph": _SCORING,
    "numba": _SCORING,
    "lifelines": _SCORING,
    "matplotlib": _SCORING,
    "playwright": ("worker",),
    "curl_cffi": ("impersonate",),
}


if __name__ == "__main__":
    sys.exit(main())
