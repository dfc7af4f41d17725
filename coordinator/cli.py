"""``soundfleet coordinator`` and ``soundfleet keys create|list|revoke``."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from coordinator import queries as q
from coordinator.auth import new_key
from runtime import database
from runtime.logs import configure_logging
from schemas.coordinator import CoordinatorSettings
from schemas.errors import ConfigError, DatabaseError, InputError
from schemas.settings import Settings

ROLES = ("researcher", "worker", "admin")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``coordinator`` and ``keys`` commands."""
    coord = sub.add_parser("coordinator", help="run the coordinator HTTP service")
    coord.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    coord.add_argument("--port", type=int, default=None, help="port (default 8700; 0: any)")
    coord.add_argument(
        "--processes",
        type=int,
        default=None,
        help="server processes sharing the port (default 1; each has its own pool)",
    )
    coord.set_defaults(handler=_coordinator)

    keys = sub.add_parser("keys", help="create, list and revoke coordinator API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.set_defaults(handler=_keys_create)
    lst = actions.add_parser("list", help="list keys (never the keys themselves)")
    lst.set_defaults(handler=_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(handler=_keys_revoke)


def _coordinator(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from coordinator.server import run

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        coord = CoordinatorSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SOUNDFLEET_COORDINATOR_" + str(first["loc"][0]).upper()
        raise ConfigError(f"{name}: {first['msg']}") from None
    host = args.host or coord.host
    port = coord.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0..65535, not {port}")
    processes = coord.processes if args.processes is None else args.processes
    if not 1 <= processes <= 64:
        raise ConfigError(f"--processes must be 1..64, not {processes}")
    target = database.resolve(settings)
    try:
        return run(coord, target.dsn, host, port, processes)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def _with_conn(settings: Settings, action: str, *values: object) -> object:
    target = database.resolve(settings)
    async with database.connection(target.dsn, timeout=settings.db_connect_timeout_s) as conn:
        try:
            if action == "create":
                name, role, digest, prefix = values
                return await q.create_key(conn, str(name), str(role), str(digest), str(prefix))
            if action == "list":
                return await q.list_keys(conn)
            return await q.revoke_key(conn, int(str(values[0])))
        except asyncpg.UndefinedTableError as exc:
            raise DatabaseError(
                "the database is not migrated: run `soundfleet db migrate`"
            ) from exc
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"the database refused the key operation: {exc}") from exc


def _keys_create(args: argparse.Namespace) -> int:
    if not args.name.strip():
        raise InputError("--name must not be empty")
    key, digest, prefix = new_key()
    key_id = asyncio.run(_with_conn(Settings(), "create", args.name, args.role, digest, prefix))
    print(key)
    print(
        f"created {args.role} key {key_id} ({args.name!r}); it is shown only once",
        file=sys.stderr,
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_with_conn(Settings(), "list"))
    assert isinstance(rows, list)
    for r in rows:
        state = "revoked" if r["revoked_at"] else "active"
        print(f"{r['id']:>5}  {r['role']:<10}  {r['prefix']}…  {state:<8}  {r['name']}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    if not asyncio.run(_with_conn(Settings(), "revoke", args.key_id)):
        raise InputError(f"key {args.key_id} does not exist or is already revoked")
    print(f"revoked key {args.key_id}")
    return 0
