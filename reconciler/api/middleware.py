"""What every request to the API passes through: the body-size limit and the error answers.

``api/app.py`` installs both on the application. Errors are ``{"error": ..., "detail": ...}``
with the right status code (``ApiError``'s own, 404 for an unknown environment, 503 when the state
store is down, 409 for another refusal, 500 with nothing more for anything unexpected): no stack
traces, no secrets, no credentials in URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from reconciler import logs
from reconciler.api.errors import ApiError
from reconciler.errors import NotFoundError, ReconcilerError, StoreError

log = logs.get_logger(__name__)


def incomplete_body() -> JSONResponse:
    return JSONResponse({"error": "request body incomplete", "detail": None}, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status,
                            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "detail": None}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", [])), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client closed the connection (or sent a broken chunked body) before its body ended;
        # nobody reads this answer, but without a handler the daemon logs a stack trace.
        return incomplete_body()

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "detail": None}, status_code=404)

    @app.exception_handler(StoreError)
    async def _store_down(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"error": "state store unavailable", "detail": str(exc)}, status_code=503)

    @app.exception_handler(ReconcilerError)
    async def _reconciler_error(_request: Request, exc: ReconcilerError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "detail": None}, status_code=409)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unexpected_error", error_type=type(exc).__name__)
        return JSONResponse({"error": "internal error", "detail": None}, status_code=500)


def limit_body(app: FastAPI, max_body: int) -> None:
    """Refuse bodies over ``max_body`` bytes (413) by Content-Length, or while reading a chunked one."""

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > max_body
            except ValueError:
                return JSONResponse({"error": "invalid Content-Length", "detail": None}, status_code=400)
            if too_big:
                return JSONResponse({"error": "request body too large", "detail": {"limit": max_body}},
                                    status_code=413)
        elif request.method in ("POST", "PUT", "PATCH"):
            body = b""
            try:
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > max_body:
                        return JSONResponse({"error": "request body too large", "detail": {"limit": max_body}},
                                            status_code=413)
            except ClientDisconnect:
                return incomplete_body()
            request._body = body
        return await call_next(request)
