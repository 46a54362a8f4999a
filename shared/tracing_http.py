"""The HTTP side of the traces (README: Traces and logs): each request a span of the complaint's trace."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing


class TracedRequests:
    """ASGI middleware: each HTTP request a span, continued from its ``traceparent`` header. Named by
    method and route template, never the path itself (it may hold a reference or a token)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        with tracing.serving(self.service, scope["method"], headers) as span:
            assert span is not None  # traces are on

            async def send_and_note_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_and_note_status)
            finally:
                route = scope.get("route")
                if route is not None:
                    span.update_name(f"{self.service} {scope['method']} {route.path}")
                    span.set_attribute("http.route", route.path)
