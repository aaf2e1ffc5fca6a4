"""What every response of the studio goes through: castline's errors as JSON with the right
status (never a traceback), security headers, and a limit on the size of a request body."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from castline.errors import (
    CastlineError,
    ConfigError,
    RunNotFound,
    RunNotResumable,
    SourceError,
    SourcesOffTopic,
    UsageError,
)
from castline.studio.files import BadFileName
from castline.studio.uploads import UploadTooLarge

log = logging.getLogger("castline.studio")
TOO_LARGE = "castline.body_too_large"

# Pages load only their own scripts, styles and media; downloads run nothing at all.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOWNLOAD_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def status_of(exc: CastlineError) -> int:
    """The HTTP status that says what kind of problem the error is."""
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, RunNotResumable):
        return 409
    if isinstance(exc, (RunNotFound, UsageError)):
        return 404
    if isinstance(exc, (SourceError, SourcesOffTopic)):
        return 422
    if isinstance(exc, (BadFileName, ConfigError)):
        return 400
    return 500


def error(status: int, message: str, **detail: object) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, **detail}, status_code=status)


def install(app: FastAPI, *, max_body_bytes: int) -> None:
    """Put the error handlers, the headers and the body limit on `app`."""

    async def castline_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CastlineError)
        return error(status_of(exc), str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.scope.get(TOO_LARGE):  # the framework saw the limit as a broken body
            return error(413, f"the request is larger than the {max_body_bytes:,} bytes allowed")
        headers = getattr(exc, "headers", None)
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(headers or {})
        return response

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return error(422, f"the request is invalid: {problems}")

    app.add_exception_handler(CastlineError, castline_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)

    @app.middleware("http")
    async def headers_and_bugs(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await call_next(request)
        except Exception as exc:  # a bug: a message, never a traceback on the wire or stderr
            if request.scope.get(TOO_LARGE):
                return error(413, f"the request is larger than the {max_body_bytes:,} bytes")
            log.debug("internal error in %s", request.url.path, exc_info=True)
            response = error(
                500, f"internal error: {type(exc).__name__}; this is a bug in castline studio"
            )
        path = request.url.path
        download = "/files/" in path and path.startswith("/api/runs/")
        response.headers.setdefault(
            "Content-Security-Policy", DOWNLOAD_POLICY if download else PAGE_POLICY
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)


class BodyLimit:
    """Refuse a request body past `max_bytes`: at once by its Content-Length, else as it
    arrives (a chunked upload), so an oversized upload is never stored whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error(
                413, f"the request is larger than the {self.max_bytes:,} bytes allowed"
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            body: bytes = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                scope[TOO_LARGE] = True
                raise UploadTooLarge("the request body", self.max_bytes)
            return message

        await self.app(scope, counted, send)
