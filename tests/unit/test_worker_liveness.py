"""The worker's liveness endpoint fails when its event loop is stuck, not before."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request

from crawler.metrics import WorkerMetrics


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_healthz_follows_the_event_loop_and_metrics_keep_answering() -> None:
    metrics = WorkerMetrics()
    port = metrics.serve(0, stall_s=1.0)
    assert _status(port, "/healthz") == 200  # starting: no tick yet
    ticking, stuck, release, recovered, done = (threading.Event() for _ in range(5))

    async def main() -> None:
        ticker = asyncio.create_task(metrics.tick_forever(every_s=0.05))
        await asyncio.sleep(0.1)
        ticking.set()
        await asyncio.to_thread(stuck.wait, 30)
        release.wait(30)  # a stuck loop: a blocking call, a CPU-bound parse, a deadlock
        await asyncio.sleep(0.2)
        recovered.set()
        await asyncio.to_thread(done.wait, 30)
        ticker.cancel()

    runner = threading.Thread(target=asyncio.run, args=(main(),))
    runner.start()
    try:
        assert ticking.wait(10)
        assert _status(port, "/healthz") == 200
        stuck.set()
        deadline = time.monotonic() + 20
        while _status(port, "/healthz") == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _status(port, "/healthz") == 503  # stalled past 1 s
        assert _status(port, "/metrics") == 200  # the metrics thread alone says nothing
        release.set()
        assert recovered.wait(10)
        assert _status(port, "/healthz") == 200  # ticking again
    finally:
        release.set()
        done.set()
        runner.join(10)
