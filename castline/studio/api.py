"""The studio's JSON API. Each route calls the library function the CLI calls for the same
thing (`describe` for `runs show --json`, `audit_trail` for `runs logs`, `estimate`, `enqueue`,
the review queue's `pending_reviews` and `decide`); none of them is reimplemented here."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from castline.budget.estimate import estimate
from castline.config import load_show
from castline.engine import episodes, reviews
from castline.engine.executors import Executors
from castline.engine.inspection import audit_trail, describe, display_status
from castline.errors import CastlineError, ConfigError, RunNotResumable, UsageError
from castline.insights import show_history
from castline.insights.html import stats_html
from castline.store import RunRecord, Store
from castline.studio import catalog, editing, guards, uploads
from castline.studio.files import published_file

log = logging.getLogger("castline.studio")
# A run has ended (for now): its stream closes; a review decision starts a new one.
FINISHED = frozenset({"completed", "rejected", "halted", "failed", "awaiting-review"})
STREAM_POLL_S = 0.25
STATE_EVERY = 4  # polls between two reads of a quiet run's state
WORKER_HINT = "castline worker --concurrency 4"


class Studio:
    """What the routes share: the store, the show bibles the studio may start episodes of, and
    the upload limit."""

    def __init__(self, store: Store, bibles: dict[str, Path], max_upload_bytes: int) -> None:
        self.store = store
        self.configured = bibles
        self.max_upload_bytes = max_upload_bytes
        self.decisions: list[threading.Thread] = []  # review decisions continuing their runs

    def start(self, name: str, action: Callable[..., object], *args: Any, **kw: Any) -> None:
        """Continue a run in this process, in the background: how it ends is in the store and
        its audit trail (which its page streams), so nothing is lost by not waiting here."""
        thread = threading.Thread(
            target=_quietly, args=(action, *args), kwargs=kw, name=name, daemon=True
        )
        self.decisions.append(thread)
        thread.start()

    def settle(self, timeout: float | None = None) -> None:
        """Wait for the runs that review decisions continued here (on shutdown, in tests)."""
        for thread in list(self.decisions):
            thread.join(timeout)

    def bibles(self) -> dict[str, Path]:
        """Every show the studio can start an episode of: those in the store (by the bible of
        their latest episode), and those given to `castline serve --show`."""
        known = {s.id: uploads.original_bible(Path(s.show_path)) for s in catalog.shows(self.store)}
        return {**known, **self.configured}

    def bible(self, show: str) -> Path:
        found = self.bibles().get(show)
        if found is None or not found.exists():
            raise ConfigError(
                f"no show bible for show {show!r}; GET /api/shows lists the shows an episode "
                "can be started for (`castline serve --show show.yaml` adds one)"
            )
        return found


def workers(store: Store) -> dict[str, Any]:
    """Whether any `castline worker` is alive to take queued episodes, and how to start one."""
    alive = [e for e in Executors(store).all() if e.kind == "worker" and e.alive()]
    return {
        "running": len(alive),
        "hint": None if alive else f"no worker is running; start one with `{WORKER_HINT}`",
    }


CONFIRM_EDIT = (
    "Confirm an edit of turns: approve the reviewed script as edited, or voice only the "
    "changed turns of a finished episode again"
)


class TurnEdits(BaseModel):
    turns: dict[int, str] = Field(description="turn index (from 0) → its new text")


class Decision(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


def existing_run(run_id: str, request: Request) -> RunRecord:
    """The run, looked up before a stream starts (a 404 cannot follow a 200)."""
    studio: Studio = request.app.state.studio
    return studio.store.get_run(run_id)


ExistingRun = Annotated[RunRecord, Depends(existing_run)]


def router(studio: Studio) -> APIRouter:
    api = APIRouter(prefix="/api")

    @api.get("/shows", summary="The shows in the store, with episode counts and totals")
    def list_shows() -> dict[str, Any]:
        found = {s.id: s.as_json() for s in catalog.shows(studio.store)}
        for key, path in studio.configured.items():
            if key not in found:
                title = load_show(path).show.title
                found[key] = {"id": key, "title": title, "show_path": str(path), "episodes": 0}
        return {"shows": list(found.values()), "workers": workers(studio.store)}

    @api.get("/shows/{show}/episodes", summary="A show's episodes, newest first")
    def list_episodes(
        show: str,
        limit: Annotated[int, Query(ge=1, le=5000)] = 200,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        title, total, rows = catalog.episodes(studio.store, show, limit=limit, offset=offset)
        return {"show": {"id": show, "title": title, "episodes": total}, "episodes": rows}

    @api.get("/shows/{show}/stats", summary="`castline stats --json`: a show's history, "
             "trends, recurring failures and recommendations")  # fmt: skip
    def show_stats(show: str, window: Annotated[int, Query(ge=1, le=100)] = 5) -> Any:
        return show_history(studio.store, _title(show), window=window).as_json()

    @api.get("/shows/{show}/stats.html", response_class=HTMLResponse, summary="`castline "
             "stats --html`: the same as a self-contained page with charts")  # fmt: skip
    def show_stats_html(show: str, window: Annotated[int, Query(ge=1, le=100)] = 5) -> Any:
        page = stats_html(show_history(studio.store, _title(show), window=window))
        # castline's own page (its template escapes every value), sandboxed like a download
        return HTMLResponse(page, headers={"Content-Security-Policy": guards.DOWNLOAD_POLICY})

    def _title(show: str) -> str:
        for summary in catalog.shows(studio.store):
            if summary.id == show:
                return summary.title
        raise UsageError(f"no show with id {show!r} in the store; GET /api/shows lists them")

    @api.get("/runs/{run_id}", summary="One run, as `castline runs show --json` gives it")
    def run(run_id: str) -> dict[str, Any]:
        return describe(run_id).as_json()

    @api.get("/runs/{run_id}/events", summary="The run's audit trail, oldest first")
    def events(run_id: str, after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        return {"events": [e for e in audit_trail(run_id) if e["id"] > after]}

    @api.get(
        "/runs/{run_id}/stream",
        response_class=EventSourceResponse,
        summary="The run's events as they are added (server-sent events); resumable with "
        "Last-Event-ID",
    )
    async def stream(
        record: ExistingRun,
        request: Request,
        last_event_id: Annotated[str | None, Header()] = None,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> AsyncIterator[ServerSentEvent]:
        seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
        state: dict[str, Any] = {}
        quiet = STATE_EVERY  # polls without news since the state was last read
        while True:
            fresh = await asyncio.to_thread(studio.store.events, record.id, seen)
            for event in fresh:
                seen = event.id
                yield ServerSentEvent(
                    event="audit",
                    id=str(event.id),
                    data={
                        "id": event.id,
                        "ts": event.ts,
                        "kind": event.kind,
                        "stage": event.stage,
                        "message": event.message,
                    },
                )
            quiet = 0 if fresh else quiet + 1
            if fresh or quiet >= STATE_EVERY:  # the state changes with events, or by a stop
                quiet = 0
                now = await asyncio.to_thread(_state, studio.store, record.id)
                if now != state:
                    state = now
                    yield ServerSentEvent(event="state", data=now)
                if now["status"] in FINISHED and not fresh:
                    yield ServerSentEvent(event="end", data=now)
                    return
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_POLL_S)

    @api.post("/estimate", summary="Forecast an episode (low/expected/high) before starting it")
    def forecast(
        show: Annotated[str, Form()],
        topic: Annotated[str, Form()],
        target_minutes: Annotated[float | None, Form()] = None,
        urls: Annotated[str, Form()] = "",
        files: Annotated[list[UploadFile] | None, File()] = None,
    ) -> dict[str, Any]:
        bible = uploads.bible_for(studio.bible(show), target_minutes)
        with uploads.received(_uploads(files), urls, max_bytes=studio.max_upload_bytes) as refs:
            result = estimate(bible, topic, refs)
        return {
            "show": result.show_title,
            "topic": result.topic,
            "target_minutes": load_show(bible).episode.target_minutes,
            "budget": str(result.budget),
            "low": str(result.low),
            "expected": str(result.expected),
            "high": str(result.high),
            "words": result.words,
            "rows": [
                {
                    "stage": row.stage,
                    "model": row.model,
                    "calls": row.calls,
                    "low": str(row.low),
                    "expected": str(row.expected),
                    "high": str(row.high),
                }
                for row in result.rows
            ],
        }

    @api.post("/episodes", status_code=201, summary="Check an episode and put it on the queue")
    def start(
        show: Annotated[str, Form()],
        topic: Annotated[str, Form()],
        target_minutes: Annotated[float | None, Form()] = None,
        urls: Annotated[str, Form()] = "",
        provider: Annotated[str | None, Form()] = None,
        files: Annotated[list[UploadFile] | None, File()] = None,
    ) -> dict[str, Any]:
        bible = uploads.bible_for(studio.bible(show), target_minutes)
        with uploads.received(_uploads(files), urls, max_bytes=studio.max_upload_bytes) as refs:
            run_id = episodes.enqueue(bible, topic, refs, provider=provider or None)
        return {
            "run_id": run_id,
            "status": studio.store.get_run(run_id).status,
            "workers": workers(studio.store),
            "links": {"run": f"/runs/{run_id}", "stream": f"/api/runs/{run_id}/stream"},
        }

    @api.get("/review", summary="Episodes waiting for a person, with what the evaluators "
             "disagreed on")  # fmt: skip
    def review_queue() -> dict[str, Any]:
        waiting = []
        for item in reviews.pending_reviews():
            record = item["record"]
            waiting.append(
                {
                    "run_id": record.id,
                    "show": record.show_title,
                    "topic": record.topic,
                    "number": record.number,
                    "round": item["round"],
                    "requested_at": item["requested_at"],
                    "escalated": item["summary"].get("escalated", []),
                    "script": item["summary"].get("script"),
                }
            )
        return {"waiting": waiting}

    @api.post("/review/{run_id}/{verdict}", status_code=202, summary="Approve or reject an "
              "episode waiting for review; its run continues")  # fmt: skip
    def decide(
        run_id: str, verdict: Literal["approve", "reject"], body: Decision | None = None
    ) -> dict[str, Any]:
        item = reviews.review_of(run_id)
        record = item["record"]
        if item["status"] != "pending":
            raise RunNotResumable(
                f"run {record.id} was already {item['status']} on review", run_id=record.id
            )
        status = "approved" if verdict == "approve" else "rejected"
        note = body.note if body else None
        studio.start(
            f"castline-studio-review-{record.id}", reviews.decide, record.id, status, note=note
        )
        return {"run_id": record.id, "decision": status, "links": {"run": f"/runs/{record.id}"}}

    @api.post("/runs/{run_id}/edit/preview", summary="Check and price an edit of turns in "
              "place, before confirming it")  # fmt: skip
    def preview_edit(run_id: str, body: TurnEdits) -> dict[str, Any]:
        return editing.plan(run_id, body.turns).as_json()

    @api.post("/runs/{run_id}/edit", status_code=202, summary=CONFIRM_EDIT)
    def confirm_edit(run_id: str, body: TurnEdits) -> Any:
        edit = editing.plan(run_id, body.turns)
        if edit.failing or not edit.changed:
            problem = "; ".join(edit.failing) if edit.failing else "nothing changed"
            return guards.error(422, f"the edit is not applied: {problem}", failing=edit.failing)
        studio.start(f"castline-studio-edit-{edit.run_id}", editing.apply, edit)
        return {**edit.as_json(), "links": {"run": f"/runs/{edit.run_id}"}}

    @api.get("/runs/{run_id}/files/{name:path}", summary="One of the run's published files")
    def download(run_id: str, name: str) -> FileResponse:
        path = published_file(studio.store, run_id, name)
        return FileResponse(path, filename=path.name, content_disposition_type="inline")

    return api


def _uploads(files: list[UploadFile] | None) -> list[uploads.Upload]:
    return [uploads.Upload(f.filename or "", f.file) for f in files or []]


def _state(store: Store, run_id: str) -> dict[str, Any]:
    record = store.get_run(run_id)
    return {
        "status": display_status(record),
        "stage": record.stage,
        "cost": str(store.run_cost(record.id)),
        "budget": str(record.budget) if record.budget is not None else None,
        "budget_mode": record.budget_mode,
        "calls": len(store.calls(record.id)),
        "offline": record.offline,
    }


def _quietly(action: Callable[..., object], *args: Any, **kw: Any) -> None:
    try:
        action(*args, **kw)
    except CastlineError:
        pass  # recorded on the run by the engine (`follow` records the failure)
    except Exception:  # a bug: logged, never printed by a thread
        log.debug("continuing a run failed", exc_info=True)
