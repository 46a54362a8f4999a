"""The key bucket on a real server: a complaint's key is written there once and never put back after
its erasure."""

from __future__ import annotations

from uuid import uuid4

import pytest
from nats.aio.client import Client

from shared.bus import KEY_STREAM
from shared.privacy import KeyVault, MasterKey
from shared.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def vault(nc: Client, settings: Settings) -> KeyVault:
    bound = KeyVault(MasterKey.load(settings.master_key))
    await bound.bind(nc.jetstream())
    return bound


async def messages_in_bucket(nc: Client) -> int:
    """Every message the bucket's stream has stored so far (a put, a purge marker), kept or not."""
    return (await nc.jetstream().stream_info(KEY_STREAM)).state.last_seq


async def test_a_key_is_written_once_and_never_put_back_after_its_erasure(
    nc: Client, vault: KeyVault
) -> None:
    complaint_id = uuid4()
    first, other = vault.master.wrap(bytes(range(32))), vault.master.wrap(bytes(32))
    await vault.put(complaint_id, first)
    await vault.put(complaint_id, first)  # the relay again, after a restart
    await vault.put(complaint_id, other)  # never asked for: a complaint's key does not change

    assert await vault.data_key(complaint_id) == bytes(range(32))
    assert await messages_in_bucket(nc) == 1

    await vault.destroy(complaint_id)
    await vault.put(complaint_id, first)  # an old relay's put, after the erasure
    assert await vault.data_key(complaint_id) is None
