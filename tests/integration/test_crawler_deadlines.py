"""Request timeouts, enforced by coarse deadlines instead of a timer per request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from crawler.errors import TransientError
from crawler.http import ApiClient, RetryPolicy
from crawler.transport import AiohttpTransport, create_session
from tests.fake_client_ids import StaticClientIds


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str], asyncio.Event]]:
    """A local API with a path that answers at once and one that never answers."""
    seen: list[str] = []
    hanging = asyncio.Event()

    async def fast(request: web.Request) -> web.Response:
        seen.append("fast")
        return web.json_response({"ok": True})

    async def hang(request: web.Request) -> web.Response:
        seen.append("hang")
        hanging.set()
        await asyncio.sleep(60)
        return web.json_response({"late": True})

    app = web.Application()
    app.router.add_get("/api/fast", fast)
    app.router.add_get("/api/hang", hang)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api", seen, hanging
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def api_client(api: str, timeout_s: float, retries: int) -> AsyncIterator[ApiClient]:
    """An API client whose session times requests out after ``timeout_s``."""
    transport = AiohttpTransport(create_session(4, timeout_s))
    policy = RetryPolicy(max_retries=retries, backoff_base_s=0.01, backoff_max_s=0.02)
    try:
        yield ApiClient(
            transport, api, StaticClientIds(), concurrency=4, timeout_s=timeout_s, policy=policy
        )
    finally:
        await transport.close()


async def test_a_hung_request_times_out_and_its_task_carries_on(
    server: tuple[str, list[str], asyncio.Event],
) -> None:
    api, seen, _ = server
    async with api_client(api, 0.4, retries=1) as client:
        with pytest.raises(TransientError, match=r"no response within 0\.4 s"):
            await client.fetch(f"{api}/hang")
        assert seen == ["hang", "hang"]  # the first attempt and its one retry
        # The timeout's cancellation was withdrawn: the same task goes on requesting.
        assert (await client.fetch(f"{api}/fast")).data == {"ok": True}
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_cancellation_from_elsewhere_is_not_taken_for_a_timeout(
    server: tuple[str, list[str], asyncio.Event],
) -> None:
    api, seen, hanging = server
    async with api_client(api, 30.0, retries=3) as client:
        request = asyncio.create_task(client.fetch(f"{api}/hang"))
        await hanging.wait()
        request.cancel()  # a drain or a shutdown, not the deadline
        with pytest.raises(asyncio.CancelledError):
            await request
    assert seen == ["hang"]  # not retried as a timeout


async def test_concurrent_requests_each_keep_their_own_deadline(
    server: tuple[str, list[str], asyncio.Event],
) -> None:
    api, _, _ = server
    async with api_client(api, 0.3, retries=0) as client:
        results = await asyncio.gather(
            client.fetch(f"{api}/hang"),
            client.fetch(f"{api}/fast"),
            client.fetch(f"{api}/hang"),
            return_exceptions=True,
        )
    assert isinstance(results[0], TransientError)
    assert not isinstance(results[1], BaseException) and results[1].data == {"ok": True}
    assert isinstance(results[2], TransientError)
