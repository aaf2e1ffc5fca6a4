"""The studio's web app: the JSON API under /api, and the pages that use it, from one factory
so that tests run it in-process and `castline serve` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from castline import __version__
from castline.config import database_url, load_show
from castline.engine import runtime
from castline.errors import ConfigError
from castline.sources import MAX_SOURCE_BYTES
from castline.store import Store
from castline.studio import api, auth, catalog, guards
from castline.studio.uploads import MAX_FILES

STATIC = Path(__file__).resolve().parent / "static"
# The pages: each is a static shell whose script fetches its data from the API.
PAGES = {
    "/": "shows.html",
    "/start": "start.html",
    "/review": "review.html",
    "/runs/{run_id}": "run.html",
    "/episodes/{run_id}": "episode.html",
}
OPENAPI_URL = "/api/openapi.json"


def create_app(
    store: Store | None = None,
    token: str | None = None,
    *,
    shows: Sequence[Path] = (),
    max_upload_bytes: int = MAX_SOURCE_BYTES,
) -> FastAPI:
    """The studio for `store` (default: the run store of this state directory), answering
    only requests that carry `token`; `shows` are bibles an episode may be started from
    besides those of the shows already in the store."""
    store = store if store is not None else runtime.store()
    if store.url != database_url():
        raise ConfigError(
            f"the studio serves the run store castline's commands use ({database_url()}), "
            f"not {store.url}: set CASTLINE_HOME or CASTLINE_DATABASE_URL to serve another"
        )
    secret = token or auth.studio_token()
    bibles = {catalog.show_id(load_show(p).show.title): Path(p).resolve() for p in shows}
    app = FastAPI(
        title="castline studio",
        version=__version__,
        description="The JSON API of castline studio. Every request needs "
        "`Authorization: Bearer TOKEN` (the token `castline serve` prints).",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # the interactive docs load their assets from a CDN
        redoc_url=None,
    )
    studio = api.Studio(store, bibles, max_upload_bytes)
    app.state.token, app.state.studio = secret, studio
    app.include_router(api.router(studio))
    _pages(app, secret)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _document_security(app)

    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/api") and not auth.authorized(request, secret):
            response = guards.error(
                401,
                "the studio needs its token: send `Authorization: Bearer TOKEN` (the "
                "token `castline serve` printed), or log in at /login",
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return await call_next(request)

    guards.install(app, max_body_bytes=max_upload_bytes * MAX_FILES + 1024 * 1024)
    return app


def _pages(app: FastAPI, token: str) -> None:
    def page(name: str) -> Callable[..., Response]:
        def serve(request: Request) -> Response:
            given = request.query_params.get("token")
            if given is not None:  # once, from the URL `castline serve` printed
                if not auth.matches(given, token):
                    return _to_login(request, failed=True)
                response: Response = RedirectResponse(request.url.path, status_code=303)
                _set_cookie(response, token)
                return response
            if not auth.authorized(request, token):
                return _to_login(request)
            return FileResponse(STATIC / name, media_type="text/html")

        return serve

    for path, name in PAGES.items():
        app.add_api_route(path, page(name), methods=["GET"], include_in_schema=False)

    @app.get("/login", include_in_schema=False)
    def login_page() -> Response:
        return FileResponse(STATIC / "login.html", media_type="text/html")

    @app.post("/login", include_in_schema=False)
    def login(token_given: Annotated[str, Form(alias="token")], next: str = "/") -> Response:
        # a path of this site only: "//host" and "/\\host" are other sites to a browser
        target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
        if not auth.matches(token_given, token):
            return RedirectResponse("/login?" + urlencode({"next": target, "failed": 1}), 303)
        response = RedirectResponse(target, status_code=303)
        _set_cookie(response, token)
        return response


def _to_login(request: Request, *, failed: bool = False) -> Response:
    query: dict[str, Any] = {"next": request.url.path}
    if failed:
        query["failed"] = 1
    return RedirectResponse("/login?" + urlencode(query), status_code=303)


def _set_cookie(response: Response, token: str) -> None:
    response.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", path="/")


def _document_security(app: FastAPI) -> None:
    """Say in the OpenAPI description that every route needs the bearer token."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "token": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"token": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
