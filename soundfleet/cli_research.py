"""Researcher commands against a running coordinator: submit, jobs, job, cancel, export."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from runtime import database
from runtime.client import CoordinatorClient
from runtime.params import parse_params
from schemas.errors import InputError
from schemas.fields import field_rows, text_table
from schemas.jobs import SPEC_MODELS
from schemas.settings import Settings
from schemas.views import VIEW_NAMES
from soundfleet.progress import JOBS_HEADER, describe, watch

KINDS = tuple(SPEC_MODELS)
_EPILOGS = {
    "score": "\n\nEach model's params (a JSON object under params) are listed in the"
    " README's Scoring table; a wrong one is refused with the field named.",
}


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coordinator", help="coordinator URL (default: SOUNDFLEET_COORDINATOR_URL)")
    p.add_argument("--key", help="API key (default: SOUNDFLEET_API_KEY)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add submit, jobs, job, cancel and export."""
    submit = sub.add_parser(
        "submit",
        help="submit a job to the coordinator",
        description="Submit a job. `soundfleet submit KIND --help` lists KIND's spec fields.",
    )
    kinds = submit.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind in KINDS:
        model = SPEC_MODELS[kind]
        doc = (model.__doc__ or "").replace("``", "").strip()
        p = kinds.add_parser(
            kind,
            help=doc.splitlines()[0],
            description=doc,
            epilog="spec fields (name: type [default]):\n"
            + text_table(field_rows(model.model_json_schema()))
            + _EPILOGS.get(kind, ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--spec", type=Path, help="JSON file with the job's spec")
        src.add_argument(
            "--param",
            action="append",
            metavar="K=V",
            help="one spec field; V is JSON when it parses (1, true, [1,2]), else text",
        )
        p.add_argument("--priority", type=int, default=0, help="lower runs first (-100..100)")
        p.add_argument("--watch", action="store_true", help="show progress until it finishes")
        _add_connection(p)
        p.set_defaults(handler=_submit)

    p = sub.add_parser("jobs", help="list jobs with their progress")
    p.add_argument("--state")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--watch", action="store_true", help="progress bars until all finish")
    _add_connection(p)
    p.set_defaults(handler=_jobs)

    p = sub.add_parser("job", help="one job with its progress (JSON)")
    p.add_argument("job_id", type=int)
    _add_connection(p)
    p.set_defaults(handler=_job)

    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("job_id", type=int)
    _add_connection(p)
    p.set_defaults(handler=_cancel)

    p = sub.add_parser("export", help="stream a reporting view to a file")
    p.add_argument("view", help=f"one of: {', '.join(VIEW_NAMES)}")
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="csv")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_export)

    p = sub.add_parser("report", help="draw the PNG plots and index.html of the crawled data")
    p.add_argument("--out", type=Path, required=True, help="directory for the report")
    p.set_defaults(handler=_report)


def _client(args: argparse.Namespace) -> CoordinatorClient:
    settings = Settings()
    return CoordinatorClient(
        args.coordinator or settings.coordinator_url, args.key or settings.api_key
    )


def _load_spec(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a JSON object (the job's spec)")
    return data


def _submit(args: argparse.Namespace) -> int:
    spec = _load_spec(args.spec) if args.spec else parse_params(args.param)

    async def run() -> int:
        async with _client(args) as client:
            job = await client.submit(args.kind, spec, priority=args.priority)
            print(JOBS_HEADER)
            print(describe(job))
            if args.watch:
                [job] = await watch(client, [job.id])
            return 0 if job.state != "failed" else 1

    return asyncio.run(run())


def _jobs(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with _client(args) as client:
            page = await client.jobs(state=args.state, kind=args.kind, limit=args.limit)
            if not page.jobs:
                print("no jobs" + (" match" if args.state or args.kind else " yet"))
            elif args.watch:
                await watch(client, [j.id for j in page.jobs])
            else:
                print(JOBS_HEADER)
                for job in page.jobs:
                    print(describe(job))
            return 0

    return asyncio.run(run())


def _job(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with _client(args) as client:
            print((await client.job(args.job_id)).model_dump_json(indent=2))
            return 0

    return asyncio.run(run())


def _cancel(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with _client(args) as client:
            job = await client.cancel(args.job_id)
            print(JOBS_HEADER)
            print(describe(job))
            return 0

    return asyncio.run(run())


def _export(args: argparse.Namespace) -> int:
    from soundfleet.export import check_view, export_view  # pyarrow: only when exporting

    check_view(args.view)
    target = database.resolve(Settings())
    n = asyncio.run(export_view(target.dsn, args.view, args.format, args.out))
    print(f"wrote {n:,} rows of reporting.{args.view} to {args.out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from soundfleet.report import write_report

    target = database.resolve(Settings())
    figures = write_report(target.dsn, args.out)
    for fig in figures:
        print(f"{fig.name:<11} {fig.path if fig.path else 'not drawn: ' + (fig.missing or '')}")
    print(f"report: {args.out / 'index.html'}")
    return 0
