"""/health and /ready: whether a service is up, and what it is going through: the relay's lag, what
is failing (since when, the last error's class), what is set aside, what each consumer has pending on
the server, how often each task restarted."""

# No `from __future__ import annotations`: FastAPI reads the routes' signatures at runtime.
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from nats.js.api import ConsumerInfo

from shared.faults import FaultWatch
from shared.metrics import consumer_infos
from shared.runtime import NOT_READY_AFTER_SECONDS

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

# How long /health waits for the server's answer about each consumer.
CONSUMER_INFO_TIMEOUT = 1.0


async def report(runtime: "ServiceRuntime") -> dict[str, Any]:
    """What /health says beyond up or down: one store read (the relay's lag), none per message, and one
    request to the server per consumer (none while the bus is down, so the answer comes at once)."""
    relay: dict[str, Any] = {}
    if runtime.relay is not None and not runtime.relay_lease.held():
        # Another replica relays (or will once it has taken the lease): its /health tells the lag.
        relay["lease"] = "another replica's"
    elif runtime.relay is not None:
        try:
            relay["lag"] = await runtime.relay.lag()
        except Exception as fault:
            relay["lag"] = f"unknown ({type(fault).__name__})"
        relay |= runtime.relay.fault.report() | {"set_aside": runtime.relay.set_aside}
    infos = await consumer_infos(runtime, answer_within=CONSUMER_INFO_TIMEOUT)
    return {
        "relay": relay,
        "consumers": {
            loop.name: {
                **({} if runtime.consumer_leases[loop.name].held() else {"lease": "another replica's"}),
                **loop.fault.report(),
                "set_aside": loop.set_aside,
                **_waiting(info),
            }
            for loop, info in zip(runtime.loops, infos, strict=True)
        },
        "tasks": {supervised.name: supervised.report() for supervised in runtime.supervised},
    }


def _waiting(info: ConsumerInfo | None) -> dict[str, Any]:
    """The consumer as the server keeps it: messages not yet delivered, delivered and not yet
    acknowledged, and delivered more than once."""
    if info is None:
        return {"pending": "unknown (the bus does not answer)"}
    return {
        "pending": info.num_pending,
        "unacknowledged": info.num_ack_pending,
        "redelivered": info.num_redelivered,
    }


def failing_too_long(runtime: "ServiceRuntime") -> list[str]:
    """The parts whose passing fault has lasted longer than the runtime's ``not_ready_after``."""
    watched: list[tuple[str, FaultWatch]] = [(task.name, task.current_fault()) for task in runtime.supervised]
    watched += [(loop.name, loop.fault) for loop in runtime.loops]
    return sorted({name for name, fault in watched if fault.failing_for() > runtime.not_ready_after})


def health_router(runtime: "ServiceRuntime") -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        summary="200 once the service is connected to the bus and its store, else 503; the body tells "
        "the relay's lag, what is failing (since when, the last error's class) and what is set aside",
    )
    async def health() -> JSONResponse:
        healthy = await runtime.healthy()
        body = {
            "status": "ok" if healthy else "unavailable",
            "service": runtime.store.service,
            **await report(runtime),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @router.get(
        "/ready",
        summary="As /health, and 503 while the relay, a consumer or a task has been failing for longer "
        f"than {NOT_READY_AFTER_SECONDS:.0f} s (the failing parts are named)",
    )
    async def ready() -> JSONResponse:
        failing = failing_too_long(runtime)
        healthy = await runtime.healthy()
        body = {"ready": healthy and not failing, "service": runtime.store.service, "failing": failing}
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    return router
