"""Rich progress bars for jobs, fed by the coordinator's job progress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from schemas.jobs import JobView
from soundfleet.client import CoordinatorClient

FINISHED = ("done", "failed", "cancelled")


def describe(job: JobView) -> str:
    """One line about a job: kind, state, counts, rows, rate."""
    p = job.progress
    eta = f" eta {p.eta_s:.0f}s" if p.eta_s is not None and job.state not in FINISHED else ""
    extra = "".join(
        f" {name} {n}"
        for name, n in (("retrying", p.retrying), ("dead", p.dead), ("failed", p.failed))
        if n
    )
    return (
        f"#{job.id} {job.kind:<15} {job.state:<9} {p.done}/{p.total} units, "
        f"{p.rows_landed:,} rows, {p.units_per_s:.1f} units/s{eta}{extra}"
    )


def _units_finished(job: JobView) -> int:
    p = job.progress
    return p.done + p.failed + p.dead + p.cancelled


async def watch(
    client: CoordinatorClient,
    job_ids: Sequence[int],
    *,
    interval_s: float = 0.5,
    console: Console | None = None,
    until_finished: bool = True,
) -> list[JobView]:
    """Show a bar per job until all are finished (or once); returns their last state."""
    console = console or Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:
        tasks: dict[int, TaskID] = {}
        while True:
            jobs = [await client.job(j) for j in job_ids]
            for job in jobs:
                detail = (
                    f"{job.state} · {job.progress.rows_landed:,} rows · "
                    f"{job.progress.units_per_s:.1f} u/s"
                )
                if job.id not in tasks:
                    tasks[job.id] = bars.add_task(
                        f"#{job.id} {job.kind}", total=max(job.progress.total, 1), detail=detail
                    )
                bars.update(
                    tasks[job.id],
                    total=max(job.progress.total, 1),
                    completed=_units_finished(job),
                    detail=detail,
                )
            if not until_finished or all(j.state in FINISHED for j in jobs):
                return jobs
            await asyncio.sleep(interval_s)
