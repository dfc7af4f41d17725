"""The coordinator client: transient failures retried with jitter, others not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from runtime.client import CoordinatorClient
from schemas.errors import ConfigError, CoordinatorError, LeaseLost

Answer = Callable[[int], web.Response]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Any]]:
    servers: list[TestServer] = []

    async def start(answer: Answer) -> tuple[CoordinatorClient, list[int]]:
        calls: list[int] = []

        async def handler(request: web.Request) -> web.Response:
            calls.append(len(calls))
            return answer(len(calls))

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return CoordinatorClient(str(server.make_url("")), "k", "w-1"), calls

    yield start
    for server in servers:
        await server.close()


async def test_5xx_is_retried_until_an_answer(serve: Any) -> None:
    ok = {"lease_expires_at": "2026-01-01T00:00:00Z", "fleet": {"rate_share_rps": 2.0}}
    client, calls = await serve(
        lambda n: web.Response(status=503) if n < 3 else web.json_response(ok)
    )
    async with client:
        answer = await client.heartbeat(1, 1, None, 0)
    assert answer.fleet.rate_share_rps == 2.0 and len(calls) == 3


async def test_a_body_of_the_wrong_shape_is_refused_not_retried(serve: Any) -> None:
    client, calls = await serve(lambda n: web.json_response({"units": []}))
    async with client:
        with pytest.raises(CoordinatorError, match="unexpected body"):
            await client.heartbeat(1, 1, None, 0)
    assert len(calls) == 1


async def test_every_attempt_failing_is_one_error(serve: Any) -> None:
    client, calls = await serve(lambda n: web.Response(status=502))
    async with client:
        with pytest.raises(CoordinatorError, match=r"unreachable.*HTTP 502"):
            await client.heartbeat(1, 1, None, 0)
    assert len(calls) == 5


@pytest.mark.parametrize(
    ("status", "error"), [(401, ConfigError), (409, LeaseLost), (422, CoordinatorError)]
)
async def test_answers_retrying_cannot_change_are_not_retried(
    serve: Any, status: int, error: type[Exception]
) -> None:
    client, calls = await serve(lambda n: web.Response(status=status, text="no"))
    async with client:
        with pytest.raises(error):
            await client.heartbeat(1, 1, None, 0)
    assert len(calls) == 1
