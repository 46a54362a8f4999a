"""A client that streams a chunked request body while it listens for the answer, as an attacker's would:
it learns the server's answer as soon as the server gives it, however much it still meant to send."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def post_chunked(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> Answer:
    """POST ``body`` to ``path`` with ``Transfer-Encoding: chunked`` and no Content-Length."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    writer.write(head.encode("latin-1") + b"\r\n")

    async def stream() -> None:
        with contextlib.suppress(ConnectionError):  # the server closed the connection: it has answered
            for start in range(0, len(body), CHUNK):
                chunk = body[start : start + CHUNK]
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    streaming = asyncio.create_task(stream())
    try:
        return await _answer(reader)
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming
        await _close(writer)


async def post_declaring(host: str, port: int, path: str, size: int) -> Answer:
    """POST that declares a ``Content-Length`` of ``size`` and sends none of it: the answer must come
    from the headers alone."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n".encode())
    try:
        return await _answer(reader)
    finally:
        await _close(writer)


async def _answer(reader: asyncio.StreamReader) -> Answer:
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, await reader.readexactly(int(headers.get("content-length", "0"))))


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
