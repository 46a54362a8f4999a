"""The limit on a request's body, counted as the bytes stream in, whatever the request says its size is.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is answered at once, before the
app runs; a body without one (chunked) is counted as it is received, and the moment it passes the
limit the app's reading fails with ``BodyTooLarge`` and it is answered 413. No route, FastAPI's own
body parsing included, can take more than the limit into memory. What the client still sends is read
and dropped by the server (uvicorn drops a body once its answer is sent) rather than the connection
cut: a connection closed with unread data is reset, and the reset can reach the client before the 413.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from the app's reading of the body; an HTTPException, so that FastAPI's body parsing lets
    it through instead of taking it for a body it could not parse (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, detail=too_large_message(limit))
        self.limit = limit


def too_large_message(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes, the most this service takes"


def too_large_response(limit: int) -> JSONResponse:
    return JSONResponse({"error": too_large_message(limit)}, status_code=status.HTTP_413_CONTENT_TOO_LARGE)


async def answer_too_large(_: Request, error: Exception) -> JSONResponse:
    """The exception handler for ``BodyTooLarge`` raised inside the app."""
    assert isinstance(error, BodyTooLarge)
    return too_large_response(error.limit)


class BodySizeLimit:
    """At most ``limit`` bytes of body per request, for every route of the app it wraps."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large_response(self.limit)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)  # answered by the app's handler, ``answer_too_large``
            return message

        await self.app(scope, counted, send)
