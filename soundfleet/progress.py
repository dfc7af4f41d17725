"""Rich progress bars for jobs, fed by the coordinator's job progress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from runtime.client import CoordinatorClient
from schemas.jobs import JobView

FINISHED = ("done", "failed", "cancelled")


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


JOBS_HEADER = (
    f"{'id':>6} {'kind':<15} {'state':<9} {'units':>13} {'rows':>12} {'units/s':>8} "
    f"{'eta':>7} {'submitted (UTC)':<19} {'finished (UTC)':<19}"
)


def describe(job: JobView) -> str:
    """One line about a job, under :data:`JOBS_HEADER`: counts, rate, ETA, times."""
    p = job.progress
    eta = f"{p.eta_s:.0f}s" if p.eta_s is not None and job.state not in FINISHED else "-"
    extra = "".join(
        f" {name} {n}"
        for name, n in (("retrying", p.retrying), ("dead", p.dead), ("failed", p.failed))
        if n
    )
    units = f"{units_finished(job)}/{p.total}"
    return (
        f"{job.id:>6} {job.kind:<15} {job.state:<9} {units:>13} {p.rows_landed:>12,} "
        f"{p.units_per_s:>8.1f} {eta:>7} {_when(job.created_at):<19} "
        f"{_when(job.finished_at):<19}{extra}"
    )


def units_finished(job: JobView) -> int:
    """Units that ran to an end: done, failed or dead (a cancelled unit never ran)."""
    p = job.progress
    return p.done + p.failed + p.dead


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
                    completed=units_finished(job),
                    detail=detail,
                )
            if not until_finished or all(j.state in FINISHED for j in jobs):
                return jobs
            await asyncio.sleep(interval_s)
