"""`castline serve`: the studio (web pages and JSON API) on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from castline import cli as app
from castline.cli import cli, guarded

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750


@cli.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; anything but loopback exposes the studio.")  # fmt: skip
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--show", "shows", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A show bible episodes can be started from (shows already in the store are offered "
    "too). Repeatable.",
)  # fmt: skip
def serve(host: str, port: int, shows: tuple[Path, ...]) -> None:
    """Run castline studio: the shows, episodes, live runs, review queue and a JSON API.

    It prints the URL and a token: every request needs it (the pages ask for it once, or take
    it from the printed URL). The token is new at each start unless CASTLINE_STUDIO_TOKEN is
    set. The API is described at /api/openapi.json.

    \b
    Examples:
      castline serve
      castline serve --show my-show/show.yaml --port 9000
      castline worker   # in another terminal: runs the episodes the studio queues
    """
    try:
        import uvicorn

        from castline.studio import create_app
        from castline.studio.auth import studio_token
    except ImportError as exc:
        raise click.ClickException(
            f"castline studio needs the `studio` extra ({exc.name} is missing): "
            "pip install 'castline[studio]'"
        ) from None
    from castline.engine import runtime

    token = studio_token()
    web = guarded(lambda: create_app(runtime.store(), token, shows=shows))
    shown = f"[{host}]" if ":" in host else host
    app.console.print(f"castline studio on http://{shown}:{port}/", highlight=False)
    app.console.print(f"token: {token}", highlight=False)
    app.console.print(f"open http://{shown}:{port}/?token={token}", highlight=False)
    if host not in {"127.0.0.1", "localhost", "::1"}:
        app.err_console.print(
            f"[yellow]listening on {host}: anyone who can reach it and has the token can use "
            "the studio[/]"
        )
    uvicorn.run(web, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    going = [t.name.rsplit("-", 1)[-1] for t in web.state.studio.decisions if t.is_alive()]
    if going:
        app.err_console.print(
            f"runs continued by this studio stop here: {', '.join(going)}; `castline resume "
            "RUN` finishes each",
            highlight=False,
        )
