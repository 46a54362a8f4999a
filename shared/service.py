"""The HTTP side of every service: its app (health, metrics, set-aside messages, the answers to bad
requests), the helpers its routes share, and serving it beside the runtime (shared/runtime.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar
from uuid import UUID

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared import logs, refusals, tracing
from shared.asyncapi import asyncapi_document
from shared.auth import ALL_ROLES, Authenticator, Person, refuse
from shared.body_limit import BodySizeLimit, BodyTooLarge, answer_too_large
from shared.contracts import CONTRACT_OF
from shared.directory import watch_directory
from shared.health import health_router
from shared.metrics_http import TimedRequests, metrics_router
from shared.reference import AmbiguousReference, NotAComplaintId, UnknownReference, resolve
from shared.runtime import ServiceRuntime
from shared.set_aside_api import set_aside_router
from shared.settings import Settings, load_settings
from shared.store import ServiceApplication
from shared.tracing_http import TracedRequests

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

Item = TypeVar("Item")


async def applied(http: Request, person: Person, action: Callable[[], Item | None], what: str) -> Item:
    """A person's action, applied in the store in a worker thread: the aggregate's refusals become 403
    (logged, see ``refuse``) or 409, no such aggregate 404."""
    try:
        result = await asyncio.to_thread(action)
    except refusals.NotPermitted as refusal:
        raise refuse(http, person, str(refusal)) from None
    except refusals.NotPossible as refusal:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=refusal.detail()) from None
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
        app.add_middleware(TracedRequests, service=runtime.store.service)
    app.include_router(health_router(runtime))
    if runtime.settings.metrics:
        app.add_middleware(TimedRequests)
        app.include_router(metrics_router(runtime))
    directory = watch_directory(runtime.settings.directory_path)
    app.include_router(set_aside_router(runtime, Authenticator.from_settings(runtime.settings, directory)))

    # Beside /openapi.json and, like it, open to anyone: it describes messages, it carries none. Only
    # the document: no page that loads script, and nothing that publishes.
    bus_document = asyncapi_document(CONTRACT_OF[runtime.store.service])

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> dict[str, Any]:
        """What the service publishes and handles on the bus, as an AsyncAPI 3.0 document."""
        return bus_document

    return app


def serve(service: str, create_app: Callable[[Settings], FastAPI]) -> None:
    """Run one service process until SIGTERM or Ctrl-C, on uvloop's event loop and httptools' HTTP
    parser: the services' work is mostly many small hand-offs on the loop (the bus, the stores' worker
    threads, requests), which these make cheaper than asyncio's own loop and h11."""
    logs.configure(service)
    settings = load_settings()
    tracing.configure(service, settings.otlp_endpoint)
    app = create_app(settings)
    # What the process made to start (its modules, the app, the state its store caught up with) lives as
    # long as it does: kept out of the collector's full passes, which walked it all every few seconds
    # under load (at 50 complaints/s, 93-116 ms each in the notifier, 70-251 ms in the console).
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_ports[service],
        log_level="warning",
        log_config=None,
        timeout_graceful_shutdown=10,
        loop="uvloop",
        http="httptools",
    )
