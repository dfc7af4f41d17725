"""Simulator throughput: ``GET /users/{id}`` responses per second from one process.

Starts ``soundfleet simulator --users 10000000 --processes K`` as a subprocess, reads the
client_id from its homepage, then drives a bounded loopback load (``--requests`` in
total over ``--connections`` keep-alive HTTP/1.1 connections, ids spread over the whole
10M id space so both the social core and the procedural users are hit) from this
process with a minimal raw-socket client (an aiohttp client would be the bottleneck).
The server's RSS is sampled before and after. Then ``--pages`` follower lists of
social-core users (``limit=200``: up to 200 full user objects each) are fetched the same
way (``follower_pages_per_s``). Prints one JSON object, e.g.
``{"requests": 60000, "rps": …, "rss_mb_before": …, "rss_mb_after": …, …}``.
The load generator shares the two cores with the server (and the machine is shared), so
``rps`` is a lower bound; ``rps_per_server_cpu_s`` (requests per CPU-second the server
used) is the rate one process reaches on a core of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
_LENGTH = re.compile(rb"(?i)content-length:\s*([0-9]+)")


def start_simulator(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    """Start ``soundfleet simulator`` with ``args`` and wait for its listening line."""
    exe = Path(sys.executable).with_name("soundfleet")
    cmd = [str(exe), "simulator", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"listening on http://[0-9.]+:([0-9]+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(m.group(1))


def client_id(port: int) -> str:
    """The client_id of the homepage's hydration."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as resp:
        html = resp.read().decode()
    m = re.search(r'"apiClient", "data": \{"id": "([A-Za-z0-9]+)"', html)
    if not m:
        raise RuntimeError("no apiClient in the homepage")
    return m.group(1)


PIPELINE = 8


async def _connection(port: int, paths: list[bytes], statuses: dict[int, int]) -> None:
    # HTTP/1.1 pipelining (PIPELINE requests in flight per connection) keeps the
    # client's syscall count low: on two shared cores the client is the bottleneck
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for k in range(0, len(paths), PIPELINE):
            batch = paths[k : k + PIPELINE]
            writer.write(
                b"".join(b"GET " + p + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" for p in batch)
            )
            for _ in batch:
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                m = _LENGTH.search(head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(port: int, paths: list[bytes], connections: int) -> dict[int, int]:
    """GET every path over ``connections`` keep-alive connections; status counts."""
    statuses: dict[int, int] = {}
    chunks = [paths[k::connections] for k in range(connections)]
    await asyncio.gather(*(_connection(port, c, statuses) for c in chunks))
    return statuses


def _load_process(job: tuple[int, list[bytes], int]) -> dict[int, int]:
    port, paths, connections = job
    try:
        import uvloop

        return uvloop.run(load(port, paths, connections))
    except ImportError:
        return asyncio.run(load(port, paths, connections))


def load_parallel(port: int, paths: list[bytes], connections: int, clients: int) -> dict[int, int]:
    """:func:`load` split over ``clients`` processes; status counts summed."""
    jobs = [(port, paths[k::clients], max(1, connections // clients)) for k in range(clients)]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        parts = pool.map(_load_process, jobs)
    total: dict[int, int] = {}
    for part in parts:
        for status, n in part.items():
            total[status] = total.get(status, 0) + n
    return total


def user_paths(cid: str, ids: np.ndarray) -> list[bytes]:
    """``/api/users/{id}`` requests."""
    return [f"/api/users/{int(i)}?client_id={cid}".encode() for i in ids]


def cpu_s(proc: subprocess.Popen[str]) -> float:
    """CPU seconds (user + system) used by the simulator and its children so far."""
    p = psutil.Process(proc.pid)
    total = float(sum(p.cpu_times()[:2]))
    for child in p.children(recursive=True):
        total += float(sum(child.cpu_times()[:2]))
    return total


def rss_mb(proc: subprocess.Popen[str]) -> float:
    """Resident memory of the simulator and its children, MiB."""
    p = psutil.Process(proc.pid)
    total = int(p.memory_info().rss)
    for child in p.children(recursive=True):
        total += int(child.memory_info().rss)
    return round(total / 2**20, 1)


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--pages", type=int, default=2000, help="follower pages (limit=200)")
    parser.add_argument("--users", type=int, default=10_000_000)
    args = parser.parse_args()
    sim_args = ["--seed", "1", "--users", str(args.users), "--processes", str(args.processes)]
    proc, port = start_simulator([*sim_args, "--time-scale", "0"])
    try:
        cid = client_id(port)
        rng = np.random.default_rng(1)
        warm = rng.integers(1, args.users + 1, 2000)
        load_parallel(port, user_paths(cid, warm), args.connections, args.clients)
        before = rss_mb(proc)
        ids = rng.integers(1, args.users + 1, args.requests)
        cpu0 = cpu_s(proc)
        t = time.perf_counter()
        statuses = load_parallel(port, user_paths(cid, ids), args.connections, args.clients)
        elapsed = time.perf_counter() - t
        cpu = cpu_s(proc) - cpu0
        after = rss_mb(proc)
        # follower lists of social-core users, 200 full user objects per page at most
        core = rng.integers(1, min(args.users, 20_000) + 1, args.pages)
        pages = [f"/api/users/{int(u)}/followers?limit=200&client_id={cid}".encode()
                 for u in core]  # fmt: skip
        t = time.perf_counter()
        page_statuses = load_parallel(port, pages, args.connections, args.clients)
        page_elapsed = time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(10)
    result = {
        "benchmark": "simulator_users",
        "requests": int(args.requests),
        "connections": args.connections,
        "processes": args.processes,
        "client_processes": args.clients,
        "id_space": args.users,
        "seconds": round(elapsed, 3),
        "rps": round(args.requests / elapsed, 1),
        "target_rps": 3000,
        "server_cpu_s": round(cpu, 3),
        "rps_per_server_cpu_s": round(args.requests / cpu, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "follower_pages": args.pages,
        "follower_pages_per_s": round(args.pages / page_elapsed, 1),
        "follower_page_statuses": {str(k): v for k, v in sorted(page_statuses.items())},
        "rss_mb_before": before,
        "rss_mb_after": after,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
