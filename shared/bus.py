"""The streams, their consumers, and the one provisioning step that declares them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats
from nats.aio.client import DEFAULT_INBOX_PREFIX, Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, ServiceUnavailableError

if TYPE_CHECKING:
    from faststream.nats import NatsBroker

RECORD_STREAM = "EVENTS"

# The record: immutable. Never enable message schedules here: on 2.15 that silently turns deny_purge off.
RECORD_STREAM_CONFIG = StreamConfig(
    name=RECORD_STREAM,
    description="The immutable record of the reporting regime; auditors replay it.",
    subjects=["events.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=0,
    deny_delete=True,
    deny_purge=True,
    allow_rollup_hdrs=False,
    duplicate_window=120.0,
    allow_atomic=True,  # each relay publishes its events in atomic batches (shared/outbox.py)
)

# Per-complaint data keys (see shared/privacy.py): a key-value bucket as nats-py makes one, except
# that a message may be deleted, which is how a complaint's patient data is erased.
KEY_BUCKET = "PATIENT_KEYS"
KEY_STREAM = f"KV_{KEY_BUCKET}"
KEY_STREAM_CONFIG = StreamConfig(
    name=KEY_STREAM,
    description="Per-complaint data keys, wrapped; deleting one erases that complaint's patient data.",
    subjects=[f"$KV.{KEY_BUCKET}.>"],
    storage=StorageType.FILE,
    max_msgs_per_subject=1,
    discard=DiscardPolicy.NEW,
    allow_rollup_hdrs=True,
    # Read from the stream's leader, never a replica's direct answer: on a cluster a follower that has
    # not applied a key yet would answer "no key", and a complaint's key reads as erased (make chaos
    # saw receipts given up so). A key is read once per complaint and service: no read load to spread.
    allow_direct=False,
    deny_delete=False,
    deny_purge=False,
    duplicate_window=120.0,
)

# What channel systems (a call centre, a chat gateway, a kiosk) publish for intake to register, each on
# its own subject submissions.<channel> with its own credential. It holds patient data in clear, so a
# submission stays only until intake has registered (and sealed) it or recorded why not: work-queue
# retention, acknowledged means removed. Full, it refuses new submissions (the channel keeps them and
# publishes again) rather than dropping any it took; each channel's backlog is limited apart, so one
# that floods it holds up only itself. A submission published again with the same Nats-Msg-Id within
# the window is dropped by the server (its publish is answered as a duplicate); later, intake
# recognises the channel's message id itself.
SUBMISSION_STREAM = "SUBMISSIONS"
MAX_WAITING_PER_CHANNEL = 2000  # at most 128 MiB: eight channels' full backlogs fit the stream
SUBMISSION_STREAM_CONFIG = StreamConfig(
    name=SUBMISSION_STREAM,
    description="Channels' submissions, each kept until intake has registered or rejected it.",
    subjects=["submissions.*"],
    retention=RetentionPolicy.WORK_QUEUE,
    storage=StorageType.FILE,
    max_age=0,  # never dropped unregistered, however long intake is away
    max_bytes=1024 * 1024 * 1024,
    max_msgs_per_subject=MAX_WAITING_PER_CHANNEL,
    discard=DiscardPolicy.NEW,
    discard_new_per_subject=True,
    max_msg_size=64 * 1024,  # as much as an HTTP request's body: a summary is at most 4,000 characters
    duplicate_window=120.0,
)
ACK_WAIT_SECONDS = 5.0
# How many messages a consumer fetches at once, and so how many it may have unacknowledged.
BATCH_SIZE = 64
# How long a reader whose readers are people (a page, an auditor), never a service on the way to an
# alert, waits after taking less than a batch: what comes meanwhile is taken together. Each take costs
# the same whatever it holds (a fetch, a transaction and its fsync, a wake); at 20 complaints/s the
# console spends three quarters less per complaint, and a page shows an event a fifth of a second later
# at most (make bench). The first message after a quiet spell is taken at once.
GATHER_SECONDS = 0.2


def record_subjects(service: str) -> str:
    """Every subject a service writes on the record (``events.<service>.<EventName>``)."""
    return f"events.{service}.>"


def submission_subject(channel: str) -> str:
    """Where a channel publishes its submissions; its credential may publish nowhere else."""
    return f"submissions.{channel}"


def channel_of(subject: str) -> str:
    """The channel that published on a submission subject: the subject is the channel's own."""
    return subject.removeprefix("submissions.")


def channel_user(channel: str) -> str:
    """A channel's bus user: never a service's name, so its inbox is never a service's inbox."""
    return f"channel-{channel}"


def timer_stream(service: str) -> str:
    """Each service's own timer stream: a schedule's target must be in the stream that holds it, so
    a service's timers can only ever fire into that service."""
    return f"TIMERS_{service.upper()}"


def schedule_subject(service: str, key: str) -> str:
    return f"timer.{service}.schedule.{key}"


def due_subject(service: str, key: str) -> str:
    return f"timer.{service}.due.{key}"


def timer_stream_config(service: str) -> StreamConfig:
    """Pending schedules on timer.<service>.schedule.<key>, their fires on timer.<service>.due.<key>.

    Work-queue retention: a fire is removed once the service's consumer acknowledges it, while a
    schedule, which no consumer reads, stays until it fires (the server then removes it). No age or
    count limit, which could drop a pending schedule before it fires.
    """
    return StreamConfig(
        name=timer_stream(service),
        description=f"The {service} service's pending timers (NATS message schedules) and their fires.",
        subjects=[f"timer.{service}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=0,
        allow_msg_schedules=True,
        duplicate_window=120.0,
    )


@dataclass(frozen=True)
class Subscription:
    """A durable pull consumer of one service, named after the service."""

    stream: str
    durable: str
    subjects: Sequence[str]
    # Whether its consumer waits ``GATHER_SECONDS`` after a batch smaller than ``BATCH_SIZE``.
    gathers: bool = False

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            # Short, so a message held by a process that was killed comes back within seconds;
            # a handler that takes longer says it is still working (see ConsumerLoop).
            ack_wait=ACK_WAIT_SECONDS,
            # The service decides when to give up on a message (and records why), never the server.
            max_deliver=-1,
            # One batch in flight: handled in order, and one passing fault holds back the whole batch
            # (see ConsumerLoop); tracking is exact per message, whatever the order.
            max_ack_pending=BATCH_SIZE,
            filter_subjects=list(self.subjects),
        )


def timer_subscription(service: str) -> Subscription:
    """A service's consumer of its own timer fires."""
    return Subscription(timer_stream(service), service, [due_subject(service, ">")])


def services_with_timers(subscriptions: Sequence[Subscription]) -> list[str]:
    """The services that consume their own timer fires: each has a timer stream to declare."""
    return [s.durable for s in subscriptions if s.stream == timer_stream(s.durable)]


@dataclass(frozen=True)
class BusUser:
    """Who a process is on the bus: a user of the server's configuration, and the file of its nkey seed."""

    name: str
    seed_file: Path

    @classmethod
    def in_directory(cls, credentials: Path, name: str) -> BusUser:
        """The user whose seed is kept in a directory of credentials, one file per user."""
        return cls(name, credentials / f"{name}.nk")


def inbox_prefix(user: str) -> str:
    """A user's own reply subjects, so that no other user may read its replies and deliveries."""
    return f"_INBOX.{user}"


def inbox_of(user: BusUser | None) -> str:
    """Where a process connected as ``user`` gets its replies and deliveries."""
    return DEFAULT_INBOX_PREFIX.decode() if user is None else inbox_prefix(user.name)


PING_INTERVAL = 5  # seconds
MAX_OUTSTANDING_PINGS = 3


def server_urls(url: str | Sequence[str]) -> list[str]:
    """The servers of a NATS URL setting: one URL, or several separated by commas (the nodes of a
    cluster). nats-py takes a plain string as one server, so every connection is given the list."""
    given = url.split(",") if isinstance(url, str) else list(url)
    servers = [server.strip() for server in given if server.strip()]
    if not servers:
        raise ValueError(f"no NATS server URL in {url!r}")
    return servers


def _connection_options(
    name: str, on_disconnect: Callable[[], Awaitable[None]] | None, user: BusUser | None
) -> dict[str, Any]:
    """How every process connects, as ``user`` or without credentials to a server that asks for none."""
    if user is not None and not user.seed_file.is_file():
        raise FileNotFoundError(f"no NATS credential for {user.name}: {user.seed_file} does not exist")
    return {
        "name": name,
        "max_reconnect_attempts": -1,  # never give up (nats-py's default stops after 60): outages end
        "reconnect_time_wait": 0.5,
        # A server that stops answering (paused, frozen, cut off without a reset) is found out by
        # pings: with nats-py's defaults (every 2 minutes, two unanswered) a connection stays on it
        # for 4 to 6 minutes; with these, within about 20 s, and it moves to another node.
        "ping_interval": PING_INTERVAL,
        "max_outstanding_pings": MAX_OUTSTANDING_PINGS,
        "disconnected_cb": on_disconnect,
        "nkeys_seed": None if user is None else str(user.seed_file),
        "inbox_prefix": inbox_of(user),
    }


async def connect(
    url: str | Sequence[str],
    name: str,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    user: BusUser | None = None,
) -> Client:
    """Connect as ``user``, or without credentials to a server that asks for none; ``url`` may name
    several servers (comma-separated), and the client fails over between them."""
    return await nats.connect(server_urls(url), **_connection_options(name, on_disconnect, user))


def broker(url: str | Sequence[str], name: str, user: BusUser | None = None) -> NatsBroker:
    """A service's faststream broker (not yet connected): its consumers' subscribers, and once
    connected its one connection, which the relay publishes through too. It declares nothing
    (every stream is bound with ``declare=False``) and logs through the service's own log lines.
    Without FastDepends (``apply_types=False``): a consumer takes its batch's messages as they came
    and decodes each itself, so there is nothing to inject or validate (FastDepends' resolving of the
    handler's arguments was a tenth of a consumer's time per batch, measured in followup)."""
    from faststream.nats import NatsBroker  # here: the `kizuki` command connects without faststream

    options = _connection_options(name, None, user)
    return NatsBroker(server_urls(url), logger=None, apply_types=False, **options)


async def _declare_stream(js: JetStreamContext, config: StreamConfig, replicas: int) -> None:
    config = replace(config, num_replicas=replicas)
    try:
        await js.add_stream(config)
    except BadRequestError as error:
        if cluster_forming(error):
            raise
        # It exists with another configuration: bring it to this one (the deny flags cannot be undone;
        # the replicas can be raised, e.g. from 1 to 3 when a single server becomes a cluster).
        await js.update_stream(config)


async def provision(js: JetStreamContext, subscriptions: Sequence[Subscription], replicas: int = 1) -> None:
    """Declare the streams, each with ``replicas`` copies (3 in a three-node cluster), and every
    service's durable consumer (as many copies as its stream). Safe to run again."""
    await _declare_stream(js, RECORD_STREAM_CONFIG, replicas)
    for service in services_with_timers(subscriptions):
        await _declare_stream(js, timer_stream_config(service), replicas)
    await _declare_stream(js, KEY_STREAM_CONFIG, replicas)
    await _declare_stream(js, SUBMISSION_STREAM_CONFIG, replicas)
    for subscription in subscriptions:
        await js.add_consumer(subscription.stream, subscription.consumer_config())


# JetStream's answers while a cluster is forming (no meta leader yet, or not every peer known yet).
NO_SUITABLE_PEERS = 10005
INSUFFICIENT_RESOURCES = 10023


async def jetstream_ready(js: JetStreamContext, within: float = 30.0) -> None:
    """Wait until JetStream answers: a cluster that just started elects its meta leader first."""
    deadline = time.monotonic() + within
    while True:
        try:
            await js.account_info()
            return
        except (ServiceUnavailableError, NoRespondersError, NatsTimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def cluster_forming(error: APIError) -> bool:
    """Whether a refusal is one a forming cluster gives (asking again shortly will do)."""
    return error.code == 503 or error.err_code in (NO_SUITABLE_PEERS, INSUFFICIENT_RESOURCES)
