"""The bench's load generator against a real HTTP server: answers read whole, connections kept alive,
and a connection the server closed while idle never fails a POST."""

import asyncio
import json

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.end_to_end import Poster
from kizuki.processes import free_port
from tests.polling import eventually

pytestmark = pytest.mark.integration


def echo_app(connections: set[tuple[str, int]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/complaints")
    async def post(request: Request) -> JSONResponse:
        assert request.client is not None
        connections.add((request.client.host, request.client.port))
        body = await request.json()
        answer = {"key": request.headers["idempotency-key"], "api": request.headers["x-api-key"], **body}
        close = {"Connection": "close"} if body.get("close") else None
        return JSONResponse(answer, status_code=201, headers=close)

    return app


async def test_the_poster_keeps_connections_and_survives_those_the_server_closed() -> None:
    port, connections = free_port(), set[tuple[str, int]]()
    config = uvicorn.Config(echo_app(connections), port=port, log_level="warning", timeout_keep_alive=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    poster = Poster(f"http://127.0.0.1:{port}/v1/complaints", {"X-API-Key": "kz_bench"})
    try:
        await eventually(lambda: asyncio.sleep(0, server.started), what="the server started")

        async def post(n: int, **body: object) -> dict[str, object]:
            status, payload = await poster.post(
                json.dumps({"n": n, **body}).encode(), {"Idempotency-Key": str(n)}
            )
            assert status == 201
            answer: dict[str, object] = json.loads(payload)
            return answer

        assert await post(1, summary="長い" * 5000) == {
            "key": "1",
            "api": "kz_bench",
            "n": 1,
            "summary": "長い" * 5000,
        }
        assert await post(2) == {"key": "2", "api": "kz_bench", "n": 2}
        assert len(connections) == 1  # kept alive
        await post(3, close=True)  # the server closes it after its answer: not used again
        await post(4)
        assert len(connections) == 2
        # Idle past the server's keep-alive (1 s): the server closes both connections.
        await eventually(lambda: asyncio.sleep(0, not server.server_state.connections), what="idle closed")
        assert await post(5) == {"key": "5", "api": "kz_bench", "n": 5}
        assert len(connections) == 3
        answers = await asyncio.gather(*(post(n) for n in range(10, 20)))  # at once: a connection each
        assert [answer["n"] for answer in answers] == list(range(10, 20))
    finally:
        await poster.close()
        server.should_exit = True
        await serving
