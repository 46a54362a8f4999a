"""What runs in every service process besides its HTTP app: its store, the outbox relay, one loop per
consumer and its workers. Bus and store only: no HTTP layer is loaded from here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

import psycopg
from nats.aio.client import Client
from psycopg import sql

from shared.bus import GATHER_SECONDS, broker
from shared.chain import SigningKey
from shared.consumer import Consumer, ConsumerLoop
from shared.contracts import CONTRACT_OF
from shared.faults import FaultWatch, Supervised
from shared.lease import Lease, connection_kwargs, open_lease, while_held
from shared.metrics import Measure
from shared.outbox import Checkpoints, OutboxRelay
from shared.privacy import KeyVault
from shared.set_aside import OUTBOX, RejectedMessage
from shared.settings import Settings
from shared.store import ServiceApplication

log = logging.getLogger(__name__)

# /ready answers 503 once a passing fault (the relay, a consumer, a task) has lasted this long.
NOT_READY_AFTER_SECONDS = 60.0
# How often the work a lease holds looks for what was stored, on PostgreSQL: a commit wakes the relay
# and the dispatcher of its own process at once, but what another replica stored is found by looking.
REPLICAS_POLL_SECONDS = 0.25

A = TypeVar("A", bound=ServiceApplication)


def open_store(cls: type[A], settings: Settings, **collaborators: Any) -> A:
    """The service's store: a SQLite file in its data directory, or its own PostgreSQL schema."""
    if settings.postgres is None:
        settings.service_dir(cls.service).mkdir(parents=True, exist_ok=True)
        return cls(env=settings.store_env(cls.service), **collaborators)
    with psycopg.connect(**connection_kwargs(settings.postgres), autocommit=True) as connection:
        # Replicas starting at once each make the schema and its tables if they are missing, one at a
        # time: CREATE ... IF NOT EXISTS side by side can meet the other's half-made table (a unique
        # violation in the catalogue). The lock is the connection's, released when it closes.
        connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"kizuki store {cls.service}",))
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(cls.service)))
        return cls(env=settings.store_env(cls.service), **collaborators)


def _in_loop(call: Callable[[], None]) -> Callable[[], None]:
    """``call``, made from whichever thread committed, in the running event loop's thread."""
    loop = asyncio.get_running_loop()

    def from_any_thread() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the service is stopping
            loop.call_soon_threadsafe(call)

    return from_any_thread


class Worker(Protocol):
    """Background work of a service beyond its consumers, run until the service stops and woken after
    each batch its consumers stored (which it may ignore).

    Every replica of a service runs its workers. Work of which only one replica may do at a time (the
    notifier's dispatcher) holds a lease (``Leased``) and runs only while it holds it; each worker says
    in its docstring why it is leased or not."""

    async def run(self) -> None: ...

    def wake(self) -> None: ...


@runtime_checkable
class Leased(Protocol):
    """A worker that runs only while this replica holds its lease (it takes the lease in ``run``);
    the runtime gives the lease up when the service stops cleanly, so another replica takes over at
    once rather than after the TTL."""

    lease: Lease


class ServiceRuntime:
    """Runs a service's background work: the outbox relay, one loop per consumer, and its workers."""

    def __init__(
        self,
        settings: Settings,
        store: ServiceApplication,
        consumers: Sequence[Consumer[Any]],
        vault: KeyVault | None = None,
        workers: Sequence[Worker] = (),
        not_ready_after: float = NOT_READY_AFTER_SECONDS,
        measures: Sequence[Measure] = (),
    ):
        """``vault``: for a service that publishes or opens patient data keys; ``workers``: its work
        besides consumers and HTTP (the notifier's dispatcher, intake's SMTP receiver);
        ``not_ready_after``: how long a passing fault may last before /ready answers 503;
        ``measures``: its own figures for /metrics beyond every service's (the console's duties)."""
        self.settings = settings
        self.not_ready_after = not_ready_after
        self.store = store
        self.consumers = consumers
        self.vault = vault
        self.workers = workers
        self.measures = measures
        self.nc: Client | None = None
        self.relay: OutboxRelay | None = None
        # The outbox relay publishes the service's chain: one replica at a time (see shared/lease.py).
        self.relay_lease = open_lease(settings.postgres, store.service, "relay", settings.lease_seconds)
        self.loops: list[ConsumerLoop[Any]] = []
        self.consumer_leases: dict[str, Lease] = {}  # by the loop's name
        self.supervised: list[Supervised] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        service = self.store.service
        checkpoints = Checkpoints(
            key=SigningKey.load(self.settings.signing_key_file(service)),
            every=self.settings.checkpoint_every,
            seconds=self.settings.checkpoint_seconds,
        )
        user = self.settings.bus_user(service)
        consumers = broker(self.settings.bus_url, name=service, user=user)
        nc = self.nc = await consumers.connect()
        js = nc.jetstream()
        if self.vault is not None:
            await self.vault.bind(js)
        set_aside = Counter(
            kept.stream if isinstance(kept, RejectedMessage.Rejected) else OUTBOX
            for kept in await asyncio.to_thread(self.store.set_aside)
        )
        relay = self.relay = OutboxRelay(
            self.store,
            js,
            checkpoints,
            self.vault,
            max_payload=lambda: nc.max_payload,
            set_aside=set_aside[OUTBOX],
            lease=self.relay_lease,
            gather=GATHER_SECONDS if CONTRACT_OF[service].relays_gathered else 0.0,
            **({"poll_interval": REPLICAS_POLL_SECONDS} if self.settings.postgres is not None else {}),
        )
        self.store.after_each_commit(_in_loop(relay.wake))
        # Checkpoint signing is the relay's own work: it signs only while it holds the relay's lease.
        self._supervise("relay", partial(while_held, self.relay_lease, relay.run), relay.fault)
        for consumer in self.consumers:
            stream = consumer.subscription.stream
            loop = ConsumerLoop(
                self.store, consumers, consumer, self.wake_workers, set_aside=set_aside[stream], user=user
            )
            self.loops.append(loop)
            # One replica at a time takes each durable consumer's messages, so that they are handled in
            # the record's order: two replicas handling events of one case side by side would each
            # conflict with the other's commit and put the message back (a backlog that grows), and a
            # later event could be handled before the one it follows.
            lease = self.consumer_leases[loop.name] = open_lease(
                self.settings.postgres, service, f"consumer {loop.name}", self.settings.lease_seconds
            )
            self._supervise(loop.name, partial(while_held, lease, loop.run))
        for worker in self.workers:
            self._supervise(type(worker).__name__, worker.run)

    def _supervise(
        self, name: str, run: Callable[[], Awaitable[None]], fault: FaultWatch | None = None
    ) -> None:
        supervised = Supervised(name, run, fault)
        self.supervised.append(supervised)
        self._tasks.append(asyncio.create_task(supervised.forever()))

    def wake_workers(self) -> None:
        """Tell the workers that a consumer stored what it handled (the relay is woken by the store)."""
        for worker in self.workers:
            worker.wake()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        relay_held = self.relay_lease.held()
        if relay_held and self.relay is not None and self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.relay.relay_pending()  # what is left is relayed on the next start anyway
                await self.relay.sign_head()
        leased_workers = [w.lease for w in self.workers if isinstance(w, Leased)]
        for lease in [self.relay_lease, *self.consumer_leases.values(), *leased_workers]:
            await lease.release()
        if self.nc is not None:
            # Not drain(): nothing is left to hand over (every message is acked after its commit, and
            # an unacked one comes back), and draining a pull subscription can wait out its timeout.
            await self.nc.close()
        self.store.close()

    async def healthy(self) -> bool:
        if self.nc is None or not self.nc.is_connected:
            return False
        try:
            await asyncio.to_thread(self.store.process_recorder.max_notification_id)
        except Exception:
            log.exception("store is not answering")
            return False
        return True
