"""The HTTP side of the metrics (README: Metrics): each request timed under its route's template, and
the /metrics route that answers a scrape with the process's counters and what is measured now."""

# No `from __future__ import annotations`: FastAPI reads the route's signature at runtime.
import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import HTTP_REQUESTS, REGISTRY, Measured, measured

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

# A request's method as a label; any other a client makes up is `other`, so labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class TimedRequests:
    """ASGI middleware: each request counted and timed under its route's template (``/v1/cases/
    {complaint_id}``), never its URL; a request no route takes is ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers: an exception reaches the server as a 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).observe(time.perf_counter() - started)


def metrics_router(runtime: "ServiceRuntime") -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/metrics",
        summary="Metrics in the Prometheus text format (README: Metrics); a figure the store or the bus "
        "cannot give now is left out of this scrape",
        response_class=Response,
    )
    async def metrics() -> Response:
        figures = Measured(await measured(runtime))
        return Response(generate_latest(REGISTRY) + generate_latest(figures), media_type=CONTENT_TYPE_LATEST)

    return router
