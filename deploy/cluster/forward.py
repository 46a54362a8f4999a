"""Loopback forwards inside the console's container, so that the console reaches the other services.

The console calls each service at `http://<KIZUKI_HTTP_HOST>:<its port>` (shared/settings.py
`http_url`): right when every process shares one machine, wrong in a container, where that host is
the console's own bind address. Until the settings take a URL per service, this forwards each port of
KIZUKI_FORWARD (`8001=intake:8001 8002=escalation:8002 ...`) from the container's loopback to that
service's name on the compose network, which names both replicas: each connection goes to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


def forwarder(host: str, port: int) -> Handler:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            service_reader, service_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()  # the console sees a refused connection: "not answering"
            return
        await asyncio.gather(pipe(client_reader, service_writer), pipe(service_reader, client_writer))

    return handle


async def main() -> None:
    servers = []
    for rule in os.environ.get("KIZUKI_FORWARD", "").split():
        local, _, target = rule.partition("=")
        host, _, port = target.rpartition(":")
        servers.append(await asyncio.start_server(forwarder(host, int(port)), "127.0.0.1", int(local)))
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main())
