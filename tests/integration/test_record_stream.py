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


async def test_provisioning_brings_consumers_of_an_earlier_version_to_batches(nats_url: str) -> None:
    """An installation from when each consumer kept one message in flight: provisioning again lets each
    have a batch unacknowledged, and keeps its place."""
    await provision_bus(nats_url)
    nc = await connect(nats_url, "test")
    js = nc.jetstream()
    try:
        await js.publish("events.intake.ComplaintReceived", b"{}")
        for subscription in ALL_SUBSCRIPTIONS:
            earlier = dataclasses.replace(subscription.consumer_config(), max_ack_pending=1)
            await js.add_consumer(subscription.stream, earlier)
        escalation = next(
            s for s in ALL_SUBSCRIPTIONS if (s.durable, s.stream) == ("escalation", RECORD_STREAM)
        )
        pull = await js.pull_subscribe_bind(durable=escalation.durable, stream=escalation.stream)
        [message] = await pull.fetch(1, timeout=5)
        await message.ack_sync()

        await provision_bus(nats_url)
        for subscription in ALL_SUBSCRIPTIONS:
            consumer = await js.consumer_info(subscription.stream, subscription.durable)
            assert consumer.config.max_ack_pending == BATCH_SIZE
        assert (await js.consumer_info(RECORD_STREAM, "escalation")).ack_floor.stream_seq == 1
    finally:
        await nc.close()
