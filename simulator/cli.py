"""``soundfleet simulator …`` (serve a world) and ``soundfleet simulator truth …``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from schemas.errors import ConfigError, InputError

if TYPE_CHECKING:
    from simulator.world import World


def _iso(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _prob(text: str) -> float:
    try:
        p = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a probability: {text!r}") from exc
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"probability out of [0, 1]: {text!r}")
    return p


def _slow(text: str) -> tuple[float, int]:
    try:
        p, ms = text.split(":")
        return _prob(p), int(ms)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected p:ms, got {text!r}") from exc


def _world_args(parser: argparse.ArgumentParser, inherit: bool = False) -> None:
    # ``inherit``: a sub-action keeps values given before its name
    # (``simulator --seed 3 truth …``) instead of resetting them to the defaults
    def default(value: object) -> object:
        return argparse.SUPPRESS if inherit else value

    parser.add_argument("--seed", type=int, default=default(1), help="world seed (default 1)")
    parser.add_argument(
        "--users", type=int, default=default(20_000), help="id space 1..N (default 20000)"
    )
    parser.add_argument(
        "--core",
        type=int,
        default=default(None),
        help="social-core size (default min(N, 20000))",
    )
    parser.add_argument(
        "--regime",
        choices=("easy", "hard"),
        default=default("easy"),
        help="world regime: easy (spam wears its signatures) or hard (camouflaged spam, "
        "spam-looking humans, sign-up bursts); default easy",
    )


def _ids(value: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ids like 1,2,3, got {value!r}") from None
    if any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError(f"ids are positive, got {value!r}")
    return ids


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulator`` command (and its ``truth`` action)."""
    sim = sub.add_parser("simulator", help="serve a simulated api-v2 world, or write its truth")
    _world_args(sim)
    sim.add_argument(
        "--start",
        type=_iso,
        default=None,
        help="where the simulated clock starts, ISO (default: the world's start, 2026-01-01Z;"
        " the world itself does not move)",
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8701, help="0 picks a free port")
    sim.add_argument("--api-prefix", default="/api")
    sim.add_argument("--time-scale", type=float, default=1.0, help="sim seconds per second")
    sim.add_argument("--rotate-client-id", type=float, default=0.0, metavar="SEC")
    sim.add_argument("--client-id-grace", type=float, default=10.0, metavar="SEC")
    sim.add_argument("--fault-5xx", type=_prob, default=0.0, metavar="P")
    sim.add_argument("--fault-malformed", type=_prob, default=0.0, metavar="P")
    sim.add_argument("--fault-slow", type=_slow, default=(0.0, 0), metavar="P:MS")
    sim.add_argument("--rate-limit", type=float, default=0.0, metavar="R", help="req/s/client")
    sim.add_argument("--processes", type=int, default=1)
    sim.add_argument(
        "--ledger",
        type=Path,
        default=None,
        metavar="FILE",
        help="append one line per request answered (time, status, fault, page) to FILE",
    )
    sim.add_argument("--admin-token", default=None)
    hostile = sim.add_argument_group(
        "hostile platform", "answers a well-behaved platform never gives (for chaos runs)"
    )
    hostile.add_argument(
        "--hostile-body-tracks",
        type=_ids,
        default=(),
        metavar="ID,ID",
        help="these tracks' reposters/likers stream a body of --hostile-body-mb (no length)",
    )
    hostile.add_argument("--hostile-body-mb", type=int, default=300, metavar="MB")
    hostile.add_argument(
        "--hostile-loop-tracks",
        type=_ids,
        default=(),
        metavar="ID,ID",
        help="these tracks' reposters/likers pages name themselves as next_href",
    )
    real = sim.add_argument_group(
        "real-platform profile",
        "the failure modes of the real api-v2 (DataDome 403s, text 429s, millisecond "
        "cursors, URN-only web-profiles); --profile real turns them all on",
    )
    real.add_argument("--profile", choices=("default", "real"), default="default")
    real.add_argument(
        "--bot-burst",
        type=float,
        default=0.0,
        metavar="N",
        help="real profile: requests per --bot-window per IP before the IP is blocked (0: no"
        " burst blocks)",
    )
    real.add_argument("--bot-window", type=float, default=1.0, metavar="SEC")
    real.add_argument("--bot-block", type=float, default=5.0, metavar="SEC", help="IP block")
    real.add_argument(
        "--bot-cookieless",
        type=int,
        default=50,
        metavar="N",
        help="requests an IP may send without the datadome cookie per --bot-cookieless-window",
    )
    real.add_argument("--bot-cookieless-window", type=float, default=60.0, metavar="SEC")
    real.add_argument(
        "--fault-429-text", type=_prob, default=None, metavar="P",
        help="share of requests answered 429 'Please slow down.' without Retry-After, at"
        " any rate (default 0: the real profile's text 429s come from --rate-limit, as the"
        " real platform's come from its limiter)",
    )  # fmt: skip
    sim.set_defaults(handler=_serve)
    actions = sim.add_subparsers(dest="simulator_command", metavar="ACTION")
    tr = actions.add_parser("truth", help="write the world's ground truth (Parquet + JSON)")
    _world_args(tr, inherit=True)
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--viral-threshold", type=int, default=25)
    tr.set_defaults(handler=_truth)


def _configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def _generate(args: argparse.Namespace) -> World:
    # Imported here: every `soundfleet` command builds this parser, and only the
    # simulator's own commands need numpy and the world.
    from simulator.world import World

    if args.users < 1:
        raise InputError("--users must be >= 1")
    if args.core is not None and args.core < 0:
        raise InputError("--core must be >= 0")
    from simulator.regimes import regime

    return World.generate(args.seed, args.users, core=args.core, regime=regime(args.regime))


def _serve(args: argparse.Namespace) -> int:
    _configure_logging()
    log = structlog.get_logger("simulator")
    if args.processes < 1:
        raise ConfigError("--processes must be >= 1")
    t = time.perf_counter()
    world = _generate(args)
    log.info(
        "world_generated",
        seed=args.seed,
        users=args.users,
        core=world.core,
        tracks=int(world.tracks.id.size),
        seconds=round(time.perf_counter() - t, 2),
    )
    from simulator.botprotect import BotConfig
    from simulator.server import serve_forever
    from simulator.state import ServerConfig

    slow_p, slow_ms = args.fault_slow
    real = args.profile == "real"
    text_429 = args.fault_429_text or 0.0
    bots = (
        BotConfig(
            cookieless_allowance=args.bot_cookieless,
            cookieless_window_s=args.bot_cookieless_window,
            burst=args.bot_burst,
            window_s=args.bot_window,
            block_s=args.bot_block,
        )
        if real
        else None
    )
    cfg = ServerConfig(
        host=args.host,
        port=args.port,
        api_prefix=args.api_prefix,
        time_scale=args.time_scale,
        rotate_client_id_s=args.rotate_client_id,
        client_id_grace_s=args.client_id_grace,
        fault_5xx=args.fault_5xx,
        fault_malformed=args.fault_malformed,
        fault_slow=slow_p,
        fault_slow_ms=slow_ms,
        rate_limit=args.rate_limit,
        bot_protection=bots,
        fault_429_text=text_429,
        follow_cursor="ms" if real else "us",
        urn_web_profiles_only=real,
        admin_token=args.admin_token,
        processes=args.processes,
        ledger=args.ledger,
        hostile_body_tracks=args.hostile_body_tracks,
        hostile_body_mb=args.hostile_body_mb,
        hostile_loop_tracks=args.hostile_loop_tracks,
        clock_start_us=None if args.start is None else int(args.start.timestamp() * 1_000_000),
    )

    def announce(line: str) -> None:
        print(line, flush=True)

    try:
        return serve_forever(world, cfg, announce)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc


def _truth(args: argparse.Namespace) -> int:
    from simulator import truth

    world = _generate(args)
    try:
        summary = truth.write(world, args.out, threshold=args.viral_threshold)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc}") from exc
    print(f"truth of seed {args.seed} ({summary['users']} ids) written to {args.out}")
    return 0
