"""``soundfleet demo``: the one-command embedded demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.errors import InputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="run a whole fleet on a simulated world and score it")
    p.add_argument("--users", type=int, default=20_000, help="users in the simulated world")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--seed", type=int, default=7, help="world seed")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="summary, logs, report")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight per worker")
    p.add_argument(
        "--time-scale",
        type=float,
        default=3600.0,
        help="simulated seconds per second (3600: the 72-hour play poll takes 72 s)",
    )
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.users < 100:
        raise InputError("--users must be at least 100")
    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    if args.time_scale <= 0:
        raise InputError("--time-scale must be positive")
    from soundfleet.demo import DemoConfig, run  # the whole fleet's imports: only here

    cfg = DemoConfig(
        users=args.users,
        workers=args.workers,
        seed=args.seed,
        out=args.out,
        json=args.json,
        concurrency=args.concurrency,
        time_scale=args.time_scale,
    )
    return run(cfg)
