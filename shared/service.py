"""What every service process is: a store, an outbox relay, its consumers and an HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any, Protocol, TypeVar
from uuid import UUID

import psycopg
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from nats.aio.client import Client
from psycopg import sql

from shared import logs, refusals, tracing
from shared.auth import ALL_ROLES, Authenticator, Person, refuse
from shared.body_limit import BodySizeLimit, BodyTooLarge, answer_too_large
from shared.bus import connect
from shared.chain import SigningKey
from shared.consumer import Consumer, ConsumerLoop
from shared.directory import watch_directory
from shared.faults import FaultWatch, Supervised
from shared.health import NOT_READY_AFTER_SECONDS, consumer_name, health_router
from shared.metrics import Measure
from shared.metrics_http import TimedRequests, metrics_router
from shared.outbox import Checkpoints, OutboxRelay
from shared.privacy import KeyVault
from shared.reference import AmbiguousReference, NotAComplaintId, UnknownReference, resolve
from shared.set_aside import OUTBOX, RejectedMessage
from shared.set_aside_api import set_aside_router
from shared.settings import Settings, load_settings
from shared.store import ServiceApplication

log = logging.getLogger(__name__)

A = TypeVar("A", bound=ServiceApplication)


def open_store(cls: type[A], settings: Settings, **collaborators: Any) -> A:
    """The service's store: a SQLite file in its data directory, or its own PostgreSQL schema."""
    if settings.postgres is not None:
        with psycopg.connect(
            host=settings.postgres.host,
            port=settings.postgres.port,
            user=settings.postgres.user,
            password=settings.postgres.password,
            dbname=settings.postgres.dbname,
            autocommit=True,
        ) as connection:
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(cls.service)))
    else:
        settings.service_dir(cls.service).mkdir(parents=True, exist_ok=True)
    return cls(env=settings.store_env(cls.service), **collaborators)


class Worker(Protocol):
    """Background work of a service beyond its consumers, run until the service stops and woken like
    the relay after each commit (which it may ignore)."""

    async def run(self) -> None: ...

    def wake(self) -> None: ...


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
        self.loops: list[ConsumerLoop[Any]] = []
        self.supervised: list[Supervised] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        service = self.store.service
        checkpoints = Checkpoints(
            key=SigningKey.load(self.settings.signing_key_file(service)),
            every=self.settings.checkpoint_every,
            seconds=self.settings.checkpoint_seconds,
        )
        nc = self.nc = await connect(
            self.settings.bus_url, name=service, user=self.settings.bus_user(service)
        )
        js = self.nc.jetstream()
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
        )
        self._supervise("relay", relay.run, relay.fault)
        for consumer in self.consumers:
            stream = consumer.subscription.stream
            loop = ConsumerLoop(self.store, js, consumer, self.committed, set_aside=set_aside[stream])
            self.loops.append(loop)
            self._supervise(consumer_name(loop), loop.run)
        for worker in self.workers:
            self._supervise(type(worker).__name__, worker.run)

    def _supervise(
        self, name: str, run: Callable[[], Awaitable[None]], fault: FaultWatch | None = None
    ) -> None:
        supervised = Supervised(name, run, fault)
        self.supervised.append(supervised)
        self._tasks.append(asyncio.create_task(supervised.forever()))

    def committed(self) -> None:
        """Tell the relay and the workers that new events are stored."""
        if self.relay is not None:
            self.relay.wake()
        for worker in self.workers:
            worker.wake()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.relay is not None and self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.relay.relay_pending()  # what is left is relayed on the next start anyway
                await self.relay.sign_head()
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


MAX_BODY_BYTES = 64 * 1024

Item = TypeVar("Item")


async def applied(
    http: Request, person: Person, runtime: ServiceRuntime, action: Callable[[], Item | None], what: str
) -> Item:
    """A person's action, applied in the store in a worker thread: the aggregate's refusals become 403
    (logged, see ``refuse``) or 409, no such aggregate 404; once stored, the relay is woken."""
    try:
        result = await asyncio.to_thread(action)
    except refusals.NotPermitted as refusal:
        raise refuse(http, person, str(refusal)) from None
    except refusals.NotPossible as refusal:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=refusal.detail()) from None
    runtime.committed()
    return found(result, what)


def found(item: Item | None, what: str) -> Item:
    """The item, or a 404 that says what was not found."""
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no {what}")
    return item


def complaint_id_in_path(store: ServiceApplication, auth: Authenticator) -> Callable[..., Awaitable[UUID]]:
    """The dependency that reads a path's ``{complaint_id}``: the complaint's id or its reference
    (``7K3M-Q9PX``), looked up in the store's index. Not an id: 422; no such reference: 404; a
    reference two complaints share: 409. Only for someone signed in: the route checks their role."""

    # A default, not an annotation: this module's annotations are strings, which FastAPI reads with
    # the module's names only.
    signed_in = Depends(auth.requires(*ALL_ROLES))

    async def complaint_id(
        complaint_id: Annotated[str, Path(description="The complaint's id, or its reference (XXXX-XXXX).")],
        _: Person = signed_in,
    ) -> UUID:
        try:
            return await asyncio.to_thread(resolve, store, complaint_id)
        except NotAComplaintId as error:
            problem = {"type": "value_error", "loc": ("path", "complaint_id"), "msg": str(error)}
            raise RequestValidationError([problem]) from None
        except UnknownReference as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
        except AmbiguousReference as error:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None

    return complaint_id


def _field_name(location: Sequence[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "header", "path", "query")]
    return ".".join(parts) or "body"


async def _explain_invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """422 (400 for a body that is not JSON) with one plain sentence per problem, naming the field."""
    problems = []
    for item in error.errors():
        if item["type"] == "json_invalid":
            return JSONResponse(
                {
                    "error": "the request body is not valid JSON",
                    "problems": [item.get("ctx", {}).get("error", "")],
                },
                status_code=status.HTTP_400_BAD_REQUEST,
            )
        field = _field_name(item["loc"])
        message = "is required" if item["type"] == "missing" else item["msg"]
        problems.append({"field": field, "message": f"{field}: {message}"})
    return JSONResponse(
        {"error": "the request is not valid", "problems": problems},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def http_app(title: str, runtime: ServiceRuntime) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.runtime = runtime
    app.add_exception_handler(RequestValidationError, _explain_invalid_request)  # type: ignore[arg-type]  # Starlette types handlers loosely

    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    app.add_exception_handler(BodyTooLarge, answer_too_large)

    if tracing.enabled():
        app.add_middleware(tracing.TracedRequests, service=runtime.store.service)
    app.include_router(health_router(runtime))
    if runtime.settings.metrics:
        app.add_middleware(TimedRequests)
        app.include_router(metrics_router(runtime))
    directory = watch_directory(runtime.settings.directory_path)
    app.include_router(set_aside_router(runtime, Authenticator.from_settings(runtime.settings, directory)))
    return app


def serve(service: str, create_app: Callable[[Settings], FastAPI]) -> None:
    """Run one service process until SIGTERM or Ctrl-C."""
    logs.configure(service)
    settings = load_settings()
    tracing.configure(service, settings.otlp_endpoint)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_ports[service],
        log_level="warning",
        log_config=None,
        timeout_graceful_shutdown=10,
    )
