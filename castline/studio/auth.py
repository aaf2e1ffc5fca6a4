"""The studio's one secret: a token, sent as `Authorization: Bearer TOKEN` by API clients and
kept by the pages in an HttpOnly, SameSite=Strict cookie once given to the login form (or as
`?token=` once)."""

from __future__ import annotations

import hmac
import os
import secrets

from starlette.requests import Request

TOKEN_ENV = "CASTLINE_STUDIO_TOKEN"
COOKIE = "castline_studio"


def studio_token() -> str:
    """`$CASTLINE_STUDIO_TOKEN`, else a new random token (so each start has its own)."""
    return os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)


def matches(given: str | None, token: str) -> bool:
    """Whether `given` is the token, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def authorized(request: Request, token: str) -> bool:
    """The request carries the token: as a bearer credential, or in the studio's cookie."""
    return matches(bearer(request), token) or matches(request.cookies.get(COOKIE), token)
