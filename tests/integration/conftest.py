"""What the integration tests share: a client of a provisioned nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client

from kizuki.provision import provision_bus
from shared.bus import connect


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """Connected to a fresh nats-server with the streams and consumers provisioned."""
    await provision_bus(nats_url)
    client = await connect(nats_url, "test")
    yield client
    await client.close()
