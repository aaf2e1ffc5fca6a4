"""The fake's HTTP server: routing, fault injection, caching, batches and statistics.

One `ThreadingHTTPServer` on 127.0.0.1 serves all three vendors' APIs at once; each vendor's wire
format lives in its own module (`anthropic_api`, `gemini_api`, `openai_api`). Replies are real
castline structured outputs: the prompt is parsed back into its task (`tasks.parse_task`) and
solved by the offline provider.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import socket
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from castline.text import estimate_tokens

from . import anthropic_api, gemini_api, openai_api, search, speech
from .caching import ExplicitCache, PrefixCache, Segment, first_turn, join
from .tasks import PromptError, Reply, parse_task, solve
from .wire import (
    ERROR_FAULTS,
    Fault,
    RequestError,
    Response,
    json_response,
    new_id,
    retry_after_header,
    rfc3339,
)

VENDORS = ("anthropic", "gemini", "openai")
SPEECH_CALLS = frozenset({"openai.speech", "elevenlabs.speech", "gemini.speech"})
MODEL_CALLS = frozenset({"anthropic.messages", "gemini.generate", "openai.chat"}) | SPEECH_CALLS
DEFAULT_FAULT_KINDS = (Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.SERVER_ERROR)
BATCH_EXPIRY_S = 24 * 3600.0
_VENDOR_MODULES: dict[str, ModuleType] = {
    "anthropic": anthropic_api,
    "gemini": gemini_api,
    "openai": openai_api,
    "elevenlabs": speech,
}
_GEMINI_MODEL_PATH = re.compile(r"^/v1[a-z0-9]*/models/([^/:]+):([A-Za-z]+)$")
_GEMINI_BATCH_PATH = re.compile(r"^/v1[a-z0-9]*/batches/([^/:]+)$")
_ANTHROPIC_BATCH_PATH = re.compile(r"^/v1/messages/batches/([^/]+)$")
_ANTHROPIC_RESULTS_PATH = re.compile(r"^/v1/messages/batches/([^/]+)/results$")
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ELEVENLABS_PATH = re.compile(r"^/v1/text-to-speech/([^/]+)$")


def _zero_tokens() -> dict[str, int]:
    return {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0}


class Stats:
    """What the fake has served. `tokens[vendor]["input"]` counts ALL prompt tokens (uncached,
    cache reads and cache writes), so `cache_read / input` is the cache-hit share. Updated under
    a lock; read the counters directly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.batch_creations = 0
        self.tokens: dict[str, dict[str, int]] = {vendor: _zero_tokens() for vendor in VENDORS}
        self.by_model: dict[str, dict[str, int]] = {}  # "vendor:model": what it was billed for
        self.in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()  # most requests of an endpoint at once
        self.delayed_s = 0.0  # what latency and TIMEOUT faults held replies back, in total
        self.searches: Counter[str] = Counter()  # server-side web searches billed, by vendor

    def cache_hit_share(self, vendor: str) -> float:
        with self._lock:
            totals = self.tokens[vendor]
            return totals["cache_read"] / totals["input"] if totals["input"] else 0.0

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.batch_creations = 0
            for totals in self.tokens.values():
                totals.update(_zero_tokens())
            self.by_model.clear()

    def _delay(self, seconds: float) -> None:
        with self._lock:
            self.delayed_s += seconds

    def _request(self, endpoint: str) -> None:
        with self._lock:
            self.requests[endpoint] += 1

    @contextlib.contextmanager
    def _serving(self, endpoint: str) -> Iterator[None]:
        with self._lock:
            self.in_flight[endpoint] += 1
            peak = max(self.peak_in_flight[endpoint], self.in_flight[endpoint])
            self.peak_in_flight[endpoint] = peak
        try:
            yield
        finally:
            with self._lock:
                self.in_flight[endpoint] -= 1

    def _fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults[fault.name] += 1

    def _batch(self) -> None:
        with self._lock:
            self.batch_creations += 1

    def _tokens(
        self,
        vendor: str,
        *,
        model: str,
        prompt: int,
        cache_read: int,
        cache_write: int,
        output: int,
    ) -> None:
        key = f"{vendor}:{model.removeprefix('models/')}"
        with self._lock:
            for totals in (self.tokens[vendor], self.by_model.setdefault(key, _zero_tokens())):
                totals["input"] += prompt
                totals["cache_read"] += cache_read
                totals["cache_write"] += cache_write
                totals["output"] += output


@dataclass
class LoggedRequest:
    """One request the fake answered (see `FakeAPI.log`)."""

    endpoint: str
    method: str
    path: str
    model: str
    status: int
    fault: str | None
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Request:
    method: str
    path: str
    body: bytes
    query: str = ""
    endpoint: str = ""
    model: str = ""
    fault: Fault | None = None

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            raise RequestError("There was an error parsing the body: invalid JSON") from None
        if not isinstance(value, dict):
            raise RequestError("The request body must be a JSON object.")
        return value


@dataclass
class _Queued:
    fault: Fault
    remaining: int
    path: str | None
    model: str | None

    def matches(self, request: _Request) -> bool:
        if self.fault is Fault.MALFORMED_JSON and request.endpoint not in MODEL_CALLS:
            return False  # only a model's reply can be malformed
        if self.fault is Fault.SILENT_AUDIO and request.endpoint not in SPEECH_CALLS:
            return False  # only speech can be silent
        if self.model is not None and request.model != self.model:
            return False
        if self.path is None:
            return request.endpoint in MODEL_CALLS
        return self.path == request.endpoint or fnmatchcase(request.path, self.path)


@dataclass
class _AnthropicBatch:
    id: str
    created: float
    ends: float
    results: list[dict[str, Any]]


@dataclass
class _GeminiBatch:
    name: str
    model: str
    display_name: str
    created: float
    ends: float
    responses: list[dict[str, Any]] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait for idle keep-alive connections on close

    def __init__(self, fake: FakeAPI) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out or went away mid-reply is part of the game
        self.fake._record_internal_error(traceback.format_exc(), quiet=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are dropped after this long
    server: _Server

    def setup(self) -> None:
        super().setup()
        # replies go out as headers then body: without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to a reply
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, open_=False)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_DELETE(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeAPI:
    """A local stand-in for the Anthropic, Gemini and OpenAI HTTP APIs.

    ```
    with FakeAPI(latency_ms=0, seed=0) as fake:
        client = anthropic.Anthropic(api_key="x", base_url=fake.url, max_retries=0)
        ...
    ```

    Settable: `latency_ms` (added to every model call), `batch_delay_s` (batches end this long
    after creation), `timeout_sleep_s` (how long a TIMEOUT fault waits), `retry_after_s` (the
    retry-after of RATE_LIMIT), `clock_offset_s` (added to the clock for cache TTLs and batches)
    and `retired` (model ids that always get NOT_FOUND).

    Readable: `url`, `stats`, `log` (the last 500 requests: endpoint, model, status, fault and
    raw body) and `internal_errors` (tracebacks of bugs in the fake itself; a test fixture can
    assert it stays empty).
    """

    def __init__(self, latency_ms: float = 0, seed: int = 0) -> None:
        self.latency_ms = latency_ms
        self.seed = seed
        self.batch_delay_s = 0.2
        self.timeout_sleep_s = 5.0
        self.retry_after_s: float = 1
        self.clock_offset_s = 0.0
        self.retired: set[str] = set()
        # pages a request with a web search tool finds (served at /web/{path}), and how many
        # queries each such request runs (at most the tool's max_uses)
        self.web_pages: list[search.WebPage] = []
        self.searches_per_call = 2
        self.stats = Stats()
        self.log: deque[LoggedRequest] = deque(maxlen=500)
        self.internal_errors: list[str] = []
        self._lock = threading.Lock()
        self._queued: list[_Queued] = []
        self._rate = 0.0
        self._kinds: tuple[Fault, ...] = DEFAULT_FAULT_KINDS
        self._attempts: Counter[str] = Counter()
        self._anthropic_cache = ExplicitCache()
        self._gemini_cache = PrefixCache(granularity=256)
        self._openai_cache = PrefixCache(granularity=128)
        self._anthropic_batches: dict[str, _AnthropicBatch] = {}
        self._gemini_batches: dict[str, _GeminiBatch] = {}
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeAPI:
        if self._server is None:
            self._closing.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name="fake-api",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()  # wakes handlers that sleep (latency, TIMEOUT)
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake API is not running: use `with FakeAPI() as fake`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def now(self) -> float:
        """The fake's clock: wall time plus `clock_offset_s`."""
        return time.time() + self.clock_offset_s

    # --- faults and state --------------------------------------------------------------------

    def queue(
        self,
        fault: Fault,
        times: int = 1,
        path: str | None = None,
        *,
        model: str | None = None,
    ) -> None:
        """Fail the next `times` matching requests with `fault`. `path` is a request path (a
        glob, e.g. "/v1/models/*:generateContent") or an endpoint name ("gemini.generate");
        without one, only model calls match. `model` narrows it to one model id."""
        if times < 1:
            return
        with self._lock:
            self._queued.append(_Queued(fault, times, path, model))

    def fault_rate(self, rate: float, kinds: Iterable[Fault] | None = None) -> None:
        """Fail this share of model calls with a fault drawn from `kinds` (by default
        RATE_LIMIT, OVERLOADED and SERVER_ERROR). Each decision is seeded by the fake's seed,
        the request's content and how often that same request was seen before, so a run is
        reproducible whatever order concurrent requests arrive in."""
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(kinds) if kinds is not None else DEFAULT_FAULT_KINDS
        if rate and not chosen:
            raise ValueError("kinds must name at least one fault")
        with self._lock:
            self._rate = rate
            self._kinds = chosen

    def clear_faults(self) -> None:
        """Forget queued faults and stop random ones."""
        with self._lock:
            self._queued.clear()
            self._rate = 0.0
            self._attempts.clear()

    def reset_cache(self) -> None:
        """Empty every vendor's prompt cache."""
        self._anthropic_cache.clear()
        self._gemini_cache.clear()
        self._openai_cache.clear()

    # --- serving -----------------------------------------------------------------------------

    def _track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _record_internal_error(self, text: str, *, quiet: bool = False) -> None:
        lines = [line for line in text.strip().splitlines() if line]
        last = lines[-1] if lines else ""
        if quiet and any(
            name in last
            for name in ("BrokenPipeError", "ConnectionResetError", "TimeoutError", "timed out")
        ):
            return
        with self._lock:
            self.internal_errors.append(text)

    def _serve(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        request = _Request(method=handler.command, path=path, body=body, query=parts.query)
        try:
            response = self._dispatch(request)
        except Exception:
            trace = traceback.format_exc()
            self._record_internal_error(trace)
            message = "fake_api internal error: " + trace.strip().splitlines()[-1]
            response = json_response(500, {"error": {"message": message}})
        with self._lock:
            self.log.append(
                LoggedRequest(
                    endpoint=request.endpoint,
                    method=request.method,
                    path=request.path,
                    model=request.model,
                    status=response.status,
                    fault=request.fault.name if request.fault else None,
                    body=body,
                )
            )
        try:
            _write(handler, response)
        except OSError:  # the client gave up (timed out) or went away
            handler.close_connection = True

    def _dispatch(self, request: _Request) -> Response:
        route = self._route(request)
        if route is None:
            message = f"fake_api: no route for {request.method} {request.path}"
            return json_response(404, {"error": {"message": message}})
        endpoint, answer, argument = route
        request.endpoint = endpoint
        self.stats._request(endpoint)
        try:
            with self.stats._serving(endpoint):
                return answer(request, argument)
        except RequestError as exc:
            return self._error(endpoint, exc.fault, request.model, exc.message)

    def _route(
        self, request: _Request
    ) -> tuple[str, Callable[[_Request, str], Response], str] | None:
        method, path = request.method, request.path
        if method == "POST":
            if path == "/v1/messages":
                return "anthropic.messages", self._anthropic_messages, ""
            if path == "/v1/messages/count_tokens":
                return "anthropic.count_tokens", self._anthropic_count_tokens, ""
            if path == "/v1/messages/batches":
                return "anthropic.batches.create", self._anthropic_batch_create, ""
            if path == "/v1/chat/completions":
                return "openai.chat", self._openai_chat, ""
            if path == "/v1/audio/speech":
                return "openai.speech", self._openai_speech, ""
            match = _ELEVENLABS_PATH.match(path)
            if match:
                return "elevenlabs.speech", self._elevenlabs_speech, match[1]
            match = _GEMINI_MODEL_PATH.match(path)
            if match:
                model, action = match.groups()
                if action == "generateContent" and speech.wants_audio(request.body):
                    return "gemini.speech", self._gemini_speech, model
                endpoints: dict[str, tuple[str, Callable[[_Request, str], Response]]] = {
                    "generateContent": ("gemini.generate", self._gemini_generate),
                    "streamGenerateContent": ("gemini.generate", self._gemini_stream),
                    "countTokens": ("gemini.count_tokens", self._gemini_count_tokens),
                    "batchGenerateContent": ("gemini.batches.create", self._gemini_batch_create),
                }
                if action in endpoints:
                    endpoint, answer = endpoints[action]
                    return endpoint, answer, model
        elif method == "GET":
            if path.startswith("/web/"):
                return "web.page", self._web_page, path.removeprefix("/web/")
            match = _ANTHROPIC_RESULTS_PATH.match(path)
            if match:
                return "anthropic.batches.results", self._anthropic_batch_results, match[1]
            match = _ANTHROPIC_BATCH_PATH.match(path)
            if match:
                return "anthropic.batches.retrieve", self._anthropic_batch_retrieve, match[1]
            match = _GEMINI_BATCH_PATH.match(path)
            if match:
                return "gemini.batches.get", self._gemini_batch_get, match[1]
        return None

    def _error(
        self, endpoint: str, fault: Fault, model: str, message: str | None = None
    ) -> Response:
        module = _VENDOR_MODULES[endpoint.split(".")[0]]
        response: Response = module.error(
            fault, model, message, retry_after_header(self.retry_after_s)
        )
        return response

    def _fault(self, request: _Request, *, stream: bool = False) -> Fault | None:
        """The fault this request gets (recorded in the stats), or None. A TIMEOUT is served
        here: the request waits, then goes on normally."""
        fault: Fault | None = None
        if self._retired(request.model):
            fault = Fault.NOT_FOUND
        else:
            with self._lock:
                for queued in self._queued:
                    if queued.matches(request):
                        fault = queued.fault
                        queued.remaining -= 1
                        if queued.remaining <= 0:
                            self._queued.remove(queued)
                        break
                if fault is None and self._rate > 0 and request.endpoint in MODEL_CALLS:
                    key = hashlib.sha256(request.path.encode() + b"\0" + request.body).hexdigest()
                    attempt = self._attempts[key]
                    self._attempts[key] += 1
                    draw = random.Random(f"{self.seed}:{key}:{attempt}")
                    if draw.random() < self._rate:
                        fault = draw.choice(self._kinds)
        if fault is Fault.OVERLOADED_IN_STREAM and not (
            stream and request.endpoint == "anthropic.messages"
        ):
            fault = Fault.OVERLOADED
        if fault is None:
            return None
        request.fault = fault
        self.stats._fault(fault)
        if fault is Fault.TIMEOUT:
            self.stats._delay(self.timeout_sleep_s)
            self._closing.wait(self.timeout_sleep_s)
            return None
        return fault

    def _retired(self, model: str) -> bool:
        return bool(model) and bool({model, f"models/{model}"} & set(self.retired))

    def _model_latency(self) -> None:
        if self.latency_ms > 0:
            self.stats._delay(self.latency_ms / 1000)
            self._closing.wait(self.latency_ms / 1000)

    def _reply(
        self,
        segments: list[Segment],
        model: str,
        max_tokens: int | None,
        *,
        malformed: bool,
        pages: list[tuple[str, search.WebPage]] | None = None,
    ) -> Reply:
        try:
            task = parse_task(first_turn(segments))
        except PromptError as exc:
            raise RequestError(f"fake_api: the prompt is not a castline task ({exc})") from None
        if pages:
            task = search.with_pages(task, pages)
        reply = solve(task, model, max_tokens)
        if malformed:
            return Reply(text=reply.text[: max(1, len(reply.text) // 2)])
        return reply

    def _searched(self, vendor: str, limit: int) -> tuple[int, list[tuple[str, search.WebPage]]]:
        """How many queries a searching request runs, and the pages they find."""
        if not self.web_pages or limit < 1:
            return 0, []
        count = min(limit, self.searches_per_call)
        self.stats.searches[vendor] += count
        return count, [(f"{self.url}/web/{page.path}", page) for page in self.web_pages]

    def _web_page(self, request: _Request, path: str) -> Response:
        for page in self.web_pages:
            if page.path == path:
                return Response(200, page.html().encode("utf-8"), "text/html; charset=utf-8")
        return Response(404, b"<h1>Not Found</h1>", "text/html")

    # --- Speech ------------------------------------------------------------------------------

    def _speech_fault(self, request: _Request) -> Response | Fault | None:
        fault = self._fault(request)
        if fault is not None and fault in ERROR_FAULTS:
            return self._error(request.endpoint, fault, request.model)
        self._model_latency()
        return fault

    def _openai_speech(self, request: _Request, _: str) -> Response:
        body = request.json()
        request.model = _model_field(body)
        fault = self._speech_fault(request)
        if isinstance(fault, Response):
            return fault
        return speech.openai_speech(body, fault)

    def _elevenlabs_speech(self, request: _Request, voice: str) -> Response:
        body = request.json()
        request.model = str(body.get("model_id") or "eleven_multilingual_v2")
        fault = self._speech_fault(request)
        if isinstance(fault, Response):
            return fault
        output_format = dict(parse_qsl(request.query)).get("output_format", "mp3_44100_128")
        return speech.elevenlabs_speech(body, voice, output_format, fault)

    def _gemini_speech(self, request: _Request, model_name: str) -> Response:
        request.model = gemini_api.model_id(model_name)
        body = request.json()
        fault = self._speech_fault(request)
        if isinstance(fault, Response):
            return fault
        return speech.gemini_speech(body, request.model, fault)

    # --- Anthropic ---------------------------------------------------------------------------

    def _anthropic_messages(self, request: _Request, _: str) -> Response:
        body = request.json()
        request.model = _model_field(body)
        stream = bool(body.get("stream"))
        segments = anthropic_api.segments(body)
        max_tokens = anthropic_api.max_tokens(body)
        fault = self._fault(request, stream=stream)
        if fault is not None and fault in ERROR_FAULTS:
            return self._error(request.endpoint, fault, request.model)
        model = request.model
        max_uses = search.anthropic_max_uses(body)
        searches, pages = self._searched("anthropic", max_uses or 0)
        reply = self._reply(
            segments, model, max_tokens, malformed=fault is Fault.MALFORMED_JSON, pages=pages
        )
        self._model_latency()
        overloaded = fault is Fault.OVERLOADED_IN_STREAM
        cache = self._anthropic_cache.account(model, segments, self.now(), store=not overloaded)
        output_tokens = estimate_tokens(reply.text)
        stop_reason = "max_tokens" if reply.truncated else "end_turn"
        usage = anthropic_api.usage(cache, output_tokens)
        message = anthropic_api.message(model, reply.text, stop_reason, usage)
        if searches:
            usage["server_tool_use"] = {"web_search_requests": searches}
            message["content"] = search.anthropic_blocks(searches, pages) + message["content"]
        headers = {"request-id": new_id("req_")}
        if not overloaded:
            self.stats._tokens(
                "anthropic",
                model=model,
                prompt=cache.total,
                cache_read=cache.read,
                cache_write=cache.write,
                output=output_tokens,
            )
        if stream:
            events = anthropic_api.stream(message, overloaded=overloaded)
            return Response(200, events, "text/event-stream; charset=utf-8", headers)
        return json_response(200, message, headers)

    def _anthropic_count_tokens(self, request: _Request, _: str) -> Response:
        body = request.json()
        request.model = _model_field(body)
        segments = anthropic_api.segments(body)
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        return json_response(200, {"input_tokens": estimate_tokens(join(segments))})

    def _anthropic_batch_create(self, request: _Request, _: str) -> Response:
        body = request.json()
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            raise RequestError("requests: List should have at least 1 item")
        seen: set[str] = set()
        for index, item in enumerate(items):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise RequestError(
                    f"requests.{index}.custom_id: String should match pattern "
                    "'^[a-zA-Z0-9_-]{1,64}$'"
                )
            if custom_id in seen:
                raise RequestError(f"requests: custom_id {custom_id!r} is used more than once")
            seen.add(custom_id)
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        now = self.now()
        results = [
            {"custom_id": item["custom_id"], "result": self._anthropic_batch_item(item, now)}
            for item in items
        ]
        batch = _AnthropicBatch(new_id("msgbatch_"), now, now + self.batch_delay_s, results)
        with self._lock:
            self._anthropic_batches[batch.id] = batch
        self.stats._batch()
        return json_response(200, self._anthropic_batch_object(batch))

    def _anthropic_batch_item(self, item: dict[str, Any], now: float) -> dict[str, Any]:
        params = item.get("params")
        model = ""
        try:
            if not isinstance(params, dict):
                raise RequestError("params: Field required")
            model = _model_field(params)
            if self._retired(model):
                raise RequestError("", Fault.NOT_FOUND)
            if params.get("stream"):
                raise RequestError("stream: batch requests cannot be streamed")
            segments = anthropic_api.segments(params)
            reply = self._reply(segments, model, anthropic_api.max_tokens(params), malformed=False)
        except RequestError as exc:
            _, error = anthropic_api.error_object(exc.fault, model, exc.message or None)
            return {"type": "errored", "error": error}
        cache = self._anthropic_cache.account(model, segments, now)
        output_tokens = estimate_tokens(reply.text)
        self.stats._tokens(
            "anthropic",
            model=model,
            prompt=cache.total,
            cache_read=cache.read,
            cache_write=cache.write,
            output=output_tokens,
        )
        usage = anthropic_api.usage(cache, output_tokens, batch=True)
        stop_reason = "max_tokens" if reply.truncated else "end_turn"
        return {
            "type": "succeeded",
            "message": anthropic_api.message(model, reply.text, stop_reason, usage),
        }

    def _anthropic_batch(self, batch_id: str) -> _AnthropicBatch:
        with self._lock:
            batch = self._anthropic_batches.get(batch_id)
        if batch is None:
            raise RequestError(f"message_batch: {batch_id} not found", Fault.NOT_FOUND)
        return batch

    def _anthropic_batch_object(self, batch: _AnthropicBatch) -> dict[str, Any]:
        ended = self.now() >= batch.ends
        kinds = Counter(result["result"]["type"] for result in batch.results)
        counts = {
            "processing": 0 if ended else len(batch.results),
            "succeeded": kinds["succeeded"] if ended else 0,
            "errored": kinds["errored"] if ended else 0,
            "canceled": 0,
            "expired": 0,
        }
        results_url = f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None
        return anthropic_api.batch_object(
            batch.id,
            created_at=rfc3339(batch.created),
            expires_at=rfc3339(batch.created + BATCH_EXPIRY_S),
            ended_at=rfc3339(batch.ends) if ended else None,
            counts=counts,
            results_url=results_url,
        )

    def _anthropic_batch_retrieve(self, request: _Request, batch_id: str) -> Response:
        batch = self._anthropic_batch(batch_id)
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        return json_response(200, self._anthropic_batch_object(batch))

    def _anthropic_batch_results(self, request: _Request, batch_id: str) -> Response:
        batch = self._anthropic_batch(batch_id)
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        if self.now() < batch.ends:
            raise RequestError(f"Message Batch {batch_id} has not yet ended processing")
        lines = [
            json.dumps(result, ensure_ascii=False) + "\n" for result in reversed(batch.results)
        ]
        return Response(200, "".join(lines).encode("utf-8"), "application/binary")

    # --- Gemini ------------------------------------------------------------------------------

    def _gemini_generate(self, request: _Request, model_name: str) -> Response:
        request.model = gemini_api.model_id(model_name)
        body = request.json()
        segments = gemini_api.segments(body)
        max_tokens = gemini_api.max_output_tokens(body)
        fault = self._fault(request)
        if fault is not None and fault in ERROR_FAULTS:
            return self._error(request.endpoint, fault, request.model)
        searches, pages = self._searched("gemini", 10 if search.gemini_grounded(body) else 0)
        payload = self._gemini_answer(
            request.model,
            segments,
            max_tokens,
            malformed=fault is Fault.MALFORMED_JSON,
            pages=pages,
        )
        if searches:
            payload["candidates"][0]["groundingMetadata"] = search.gemini_grounding(searches, pages)
        return json_response(200, payload)

    def _gemini_answer(
        self,
        model: str,
        segments: list[Segment],
        max_tokens: int | None,
        *,
        malformed: bool = False,
        latency: bool = True,
        pages: list[tuple[str, search.WebPage]] | None = None,
    ) -> dict[str, Any]:
        reply = self._reply(segments, model, max_tokens, malformed=malformed, pages=pages)
        if latency:
            self._model_latency()
        text = join(segments)
        prompt_tokens = gemini_api.prompt_tokens(segments)
        cached = min(self._gemini_cache.account(model, text, self.now()), prompt_tokens)
        output_tokens = estimate_tokens(reply.text)
        self.stats._tokens(
            "gemini",
            model=model,
            prompt=prompt_tokens,
            cache_read=cached,
            cache_write=0,
            output=output_tokens,
        )
        return gemini_api.response(
            model,
            reply.text,
            prompt_tokens=prompt_tokens,
            cached_tokens=cached,
            output_tokens=output_tokens,
            truncated=reply.truncated,
        )

    def _gemini_stream(self, request: _Request, model_name: str) -> Response:
        request.model = gemini_api.model_id(model_name)
        raise RequestError("fake_api: streamGenerateContent is not supported; use generateContent")

    def _gemini_count_tokens(self, request: _Request, model_name: str) -> Response:
        request.model = gemini_api.model_id(model_name)
        segments = gemini_api.count_segments(request.json())
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        return json_response(200, {"totalTokens": gemini_api.prompt_tokens(segments)})

    def _gemini_batch_create(self, request: _Request, model_name: str) -> Response:
        request.model = gemini_api.model_id(model_name)
        display_name, items = gemini_api.batch_requests(request.json())
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        responses: list[dict[str, Any]] = []
        for item in items:
            inner = item["request"]
            model = gemini_api.model_id(str(inner.get("model") or request.model))
            entry: dict[str, Any] = {}
            try:
                if self._retired(model):
                    raise RequestError("", Fault.NOT_FOUND)
                segments = gemini_api.segments(inner)
                max_tokens = gemini_api.max_output_tokens(inner)
                entry["response"] = self._gemini_answer(model, segments, max_tokens, latency=False)
            except RequestError as exc:
                entry["error"] = gemini_api.error_object(exc.fault, model, exc.message or None)
            if "metadata" in item:
                entry["metadata"] = item["metadata"]
            responses.append(entry)
        now = self.now()
        batch = _GeminiBatch(
            name="batches/" + new_id("", 20),
            model=request.model,
            display_name=display_name,
            created=now,
            ends=now + self.batch_delay_s,
            responses=responses,
        )
        with self._lock:
            self._gemini_batches[batch.name] = batch
        self.stats._batch()
        return json_response(200, self._gemini_batch_object(batch, pending=True))

    def _gemini_batch_object(self, batch: _GeminiBatch, *, pending: bool = False) -> dict[str, Any]:
        now = self.now()
        if pending or now < batch.created + (batch.ends - batch.created) / 2:
            state, updated = "BATCH_STATE_PENDING", batch.created
        elif now < batch.ends:
            state, updated = "BATCH_STATE_RUNNING", batch.created
        else:
            state, updated = "BATCH_STATE_SUCCEEDED", batch.ends
        done = state == "BATCH_STATE_SUCCEEDED"
        return gemini_api.batch_object(
            batch.name,
            model=batch.model,
            display_name=batch.display_name,
            state=state,
            create_time=rfc3339(batch.created),
            update_time=rfc3339(updated),
            end_time=rfc3339(batch.ends) if done else None,
            request_count=len(batch.responses),
            responses=batch.responses if done else None,
        )

    def _gemini_batch_get(self, request: _Request, batch_id: str) -> Response:
        with self._lock:
            batch = self._gemini_batches.get(f"batches/{batch_id}")
        if batch is None:
            message = f"Batch 'batches/{batch_id}' not found."
            raise RequestError(message, Fault.NOT_FOUND)
        request.model = batch.model
        fault = self._fault(request)
        if fault is not None:
            return self._error(request.endpoint, fault, request.model)
        return json_response(200, self._gemini_batch_object(batch))

    # --- OpenAI ------------------------------------------------------------------------------

    def _openai_chat(self, request: _Request, _: str) -> Response:
        body = request.json()
        request.model = _model_field(body)
        if body.get("stream"):
            raise RequestError("fake_api: streaming chat completions are not supported")
        segments = openai_api.segments(body)
        max_tokens = openai_api.max_tokens(body)
        openai_api.check_response_format(body)
        fault = self._fault(request)
        if fault is not None and fault in ERROR_FAULTS:
            return self._error(request.endpoint, fault, request.model)
        model = request.model
        reply = self._reply(segments, model, max_tokens, malformed=fault is Fault.MALFORMED_JSON)
        self._model_latency()
        text = join(segments)
        prompt_tokens = estimate_tokens(text)
        cached = self._openai_cache.account(model, text, self.now())
        output_tokens = estimate_tokens(reply.text)
        self.stats._tokens(
            "openai",
            model=model,
            prompt=prompt_tokens,
            cache_read=cached,
            cache_write=0,
            output=output_tokens,
        )
        completion = openai_api.completion(
            model,
            reply.text,
            prompt_tokens=prompt_tokens,
            cached_tokens=cached,
            output_tokens=output_tokens,
            truncated=reply.truncated,
        )
        return json_response(200, completion, {"x-request-id": new_id("req_", 32)})


def _model_field(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model: Field required")
    return model


def _write(handler: BaseHTTPRequestHandler, response: Response) -> None:
    handler.send_response(response.status)
    handler.send_header("content-type", response.content_type)
    for name, value in response.headers.items():
        handler.send_header(name, value)
    if isinstance(response.body, bytes):
        handler.send_header("content-length", str(len(response.body)))
        handler.end_headers()
        handler.wfile.write(response.body)
        return
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    for piece in response.body:
        if piece:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
