"""The record stream on a real nats-server, as a subprocess and in a container built here."""

from __future__ import annotations

import dataclasses

import pytest
from nats.js.api import RetentionPolicy, StorageType
from nats.js.errors import ServerError

from kizuki.provision import ALL_SUBSCRIPTIONS, provision_bus
from shared.bus import (
    BATCH_SIZE,
    RECORD_STREAM,
    RECORD_STREAM_CONFIG,
    connect,
    services_with_timers,
    timer_stream,
)

pytestmark = pytest.mark.integration


async def test_provisioning_declares_an_immutable_record_and_the_consumers(any_nats_url: str) -> None:
    await provision_bus(any_nats_url)
    await provision_bus(any_nats_url)  # running it again changes nothing
    nc = await connect(any_nats_url, "test")
    js = nc.jetstream()
    try:
        record = (await js.stream_info(RECORD_STREAM)).config
        assert record.deny_delete
        assert record.deny_purge
        assert not record.allow_rollup_hdrs
        assert not record.allow_msg_schedules
        assert record.max_age in (0, None)
        assert record.storage == StorageType.FILE
        for service in services_with_timers(ALL_SUBSCRIPTIONS):
            timers = (await js.stream_info(timer_stream(service))).config
            assert timers.allow_msg_schedules
            assert timers.retention == RetentionPolicy.WORK_QUEUE
            assert timers.subjects == [f"timer.{service}.>"]
        for subscription in ALL_SUBSCRIPTIONS:
            consumer = await js.consumer_info(subscription.stream, subscription.durable)
            assert consumer.config.filter_subjects == list(subscription.subjects)
            assert consumer.config.max_ack_pending == BATCH_SIZE

        await js.publish("events.intake.ComplaintReceived", b"{}", headers={"Nats-Msg-Id": "intake:1"})
        with pytest.raises(ServerError):
            await js.purge_stream(RECORD_STREAM)
        with pytest.raises(ServerError):
            await js.delete_msg(RECORD_STREAM, 1)
        # The deny flags cannot be switched off by a configuration update either.
        with pytest.raises(ServerError, match="can not cancel deny purge"):
            await js.update_stream(dataclasses.replace(RECORD_STREAM_CONFIG, deny_purge=False))
        assert (await js.stream_info(RECORD_STREAM)).state.messages == 1
    finally:
        await nc.close()
