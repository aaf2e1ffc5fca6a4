"""The show bible (`show.yaml`) and castline's settings.

A show is described once; every episode of it reads the same bible. The schema forbids unknown keys
so that a typo fails loudly instead of being ignored, and errors point at the file, field and line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from castline.errors import ShowFileError

DEFAULT_BUDGET_USD = Decimal("33.25")
DEFAULT_ORCHESTRATION_SHARE = Decimal("0.085")
DEFAULT_WORDS_PER_MINUTE = 150
DEFAULT_TARGET_MINUTES = 20.0
DEFAULT_CONSENSUS_THRESHOLD = 0.85
STATE_DIR_ENV = "CASTLINE_HOME"
DATABASE_URL_ENV = "CASTLINE_DATABASE_URL"


Role = Literal[
    "orchestrator",
    "researcher",
    "planner",
    "writer",
    "polisher",
    "evaluator_primary",
    "evaluator_secondary",
    "evaluator_tiebreaker",
    "fallback",
]
ROLES: tuple[str, ...] = get_args(Role)


def _always(show: Show) -> bool:
    return True


def _tiebreaker_called(show: Show) -> bool:
    return show.quality.escalation == "tiebreaker"


@dataclass(frozen=True)
class RoleSpec:
    """A role of the production line: its default routing, and whether a run of a show can call
    it. Preflight demands a key for every role a run can call, so `reached` errs towards True."""

    default_routing: tuple[str, ...]
    reached: Callable[[Show], bool] = _always


# The roles, declared once: everything else (the default routing, the roles a run needs keys
# for) is derived from this table. The seed's routing: Sonnet-class coordination, an Opus-class
# writer, Claude + Gemini evaluators and a Haiku-class fallback. Model choice is configuration;
# these are only the defaults.
ROLE_SPECS: dict[Role, RoleSpec] = {
    "orchestrator": RoleSpec(("anthropic:claude-sonnet-4-6", "anthropic:claude-haiku-4-5")),
    "researcher": RoleSpec(("anthropic:claude-sonnet-4-6", "anthropic:claude-haiku-4-5")),
    "planner": RoleSpec(("anthropic:claude-sonnet-4-6", "anthropic:claude-haiku-4-5")),
    "writer": RoleSpec(("anthropic:claude-opus-4-6", "anthropic:claude-sonnet-4-6")),
    "polisher": RoleSpec(("anthropic:claude-sonnet-4-6", "anthropic:claude-haiku-4-5")),
    "evaluator_primary": RoleSpec(("anthropic:claude-sonnet-4-6", "anthropic:claude-haiku-4-5")),
    "evaluator_secondary": RoleSpec(("gemini:gemini-2.5-pro", "gemini:gemini-2.5-flash")),
    # called when the evaluators disagree, unless the show asks a person instead
    "evaluator_tiebreaker": RoleSpec(
        ("anthropic:claude-opus-4-6", "anthropic:claude-sonnet-4-6"), _tiebreaker_called
    ),
    # every call falls back to it when its own chain fails
    "fallback": RoleSpec(("anthropic:claude-haiku-4-5",)),
}
if tuple(ROLE_SPECS) != ROLES:  # pragma: no cover - caught by any import in a test run
    raise RuntimeError(f"ROLE_SPECS must declare exactly the roles {ROLES}, in that order")

DEFAULT_ROUTING: dict[Role, list[str]] = {
    role: list(spec.default_routing) for role, spec in ROLE_SPECS.items()
}


def roles_reached(show: Show) -> frozenset[str]:
    """The roles a run of `show` can call: a live run needs a key for each of them."""
    return frozenset(role for role, spec in ROLE_SPECS.items() if spec.reached(show))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Text a listener hears or a directory shows: surrounding whitespace is dropped, and what is left
# must not be empty (an empty forbidden phrase would match every turn).
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

# Characters that would make a speaker label ambiguous in `Name: text` transcripts and
# `**Name:**` scripts, or break a caption line.
_LABEL_BREAKERS = frozenset(':*[]#<>|"\\')
MAX_HOST_NAME = 40


def _check_host_name(name: str) -> str:
    bad = sorted({c for c in name if c in _LABEL_BREAKERS or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(
            f"host name {name!r} contains {shown}; a name is a speaker label in transcripts "
            "(`Name: text`), so use letters, digits, spaces, hyphens, apostrophes and dots"
        )
    if len(name) > MAX_HOST_NAME:
        raise ValueError(f"host name is {len(name)} characters; at most {MAX_HOST_NAME}")
    return name


def _check_language(tag: str) -> str:
    import langcodes

    if not langcodes.tag_is_valid(tag):
        raise ValueError(
            f"{tag!r} is not a BCP 47 language tag; use e.g. 'en', 'en-GB', 'de', 'pt-BR'"
        )
    return str(langcodes.standardize_tag(tag))


def _check_phrase(phrase: str) -> str:
    if not any(c.isalnum() for c in phrase):
        raise ValueError(f"{phrase!r} has no letters or digits, so it would match any text")
    return phrase


def _check_web_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not an http(s) URL; write it as https://example.org/...")
    return url


def _check_file_name(name: str) -> str:
    if "/" in name or "\\" in name or name in {".", ".."} or not name.isprintable():
        raise ValueError(f"{name!r} is not a plain file name; write e.g. feed.xml")
    return name


WebUrl = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_web_url)]
MIN_TARGET_MINUTES, MAX_TARGET_MINUTES = 1.0, 180.0


class ShowInfo(_Strict):
    """What a podcast directory shows about the show."""

    title: Annotated[Text, Field(max_length=255)]
    description: Annotated[Text, Field(max_length=4000)]
    author: Annotated[Text, Field(max_length=255)]
    language: Annotated[Text, AfterValidator(_check_language)] = "en"
    artwork: Text | None = Field(
        default=None,
        description="cover art: a JPEG or PNG file relative to the show bible (square, "
        "1400-3000 px, RGB; checked before a run) or an https URL",
    )
    explicit: bool = False
    website: WebUrl | None = None


class Host(_Strict):
    """A voice of the show: who they are and how each TTS engine should speak them."""

    name: Annotated[Text, AfterValidator(_check_host_name)]
    persona: Text
    voices: dict[Text, Text] = Field(default_factory=dict)


class BrandVoice(_Strict):
    style_guide: Text
    sample_lines: list[Text] = Field(default_factory=list)


class Rules(_Strict):
    forbidden_phrases: list[Annotated[Text, AfterValidator(_check_phrase)]] = Field(
        default_factory=list
    )
    required_disclaimers: list[Annotated[Text, AfterValidator(_check_phrase)]] = Field(
        default_factory=list
    )


class EpisodeDefaults(_Strict):
    target_minutes: Annotated[float, Field(ge=MIN_TARGET_MINUTES, le=MAX_TARGET_MINUTES)] = (
        DEFAULT_TARGET_MINUTES
    )
    words_per_minute: Annotated[int, Field(ge=60, le=300)] = DEFAULT_WORDS_PER_MINUTE
    length_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.15

    @property
    def target_words(self) -> int:
        return round(self.target_minutes * self.words_per_minute)


Stage = Literal["research", "plan", "write", "review", "polish", "voice"]

# Shares of the episode budget per stage; orchestration has its own key (orchestration_share), and
# what no stage is allotted is the shared reserve any stage may draw on once its own share is spent.
DEFAULT_ALLOCATIONS: dict[Stage, Decimal] = {
    "research": Decimal("0.15"),
    "plan": Decimal("0.03"),
    "write": Decimal("0.35"),
    "review": Decimal("0.12"),
    "polish": Decimal("0.08"),
    "voice": Decimal("0.10"),
}


class Budget(_Strict):
    per_episode: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=6)] = (
        DEFAULT_BUDGET_USD
    )
    orchestration_share: Annotated[Decimal, Field(gt=0, lt=1)] = DEFAULT_ORCHESTRATION_SHARE
    allocations: dict[Stage, Annotated[Decimal, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: dict(DEFAULT_ALLOCATIONS)
    )
    warn_at: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.80")
    degrade_at: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.95")

    @field_validator("allocations")
    @classmethod
    def _merge_allocations(cls, allocations: dict[Stage, Decimal]) -> dict[Stage, Decimal]:
        merged = dict(DEFAULT_ALLOCATIONS)
        merged.update(allocations)
        return merged

    @model_validator(mode="after")
    def _shares_fit(self) -> Budget:
        total = sum(self.allocations.values(), self.orchestration_share)
        if total > 1:
            raise ValueError(
                f"orchestration_share plus the stage allocations come to {total:.3f} of the "
                "budget; they must add up to at most 1 (what is left is the shared reserve)"
            )
        if self.degrade_at < self.warn_at:
            raise ValueError("degrade_at must not be below warn_at")
        return self

    @property
    def reserve_share(self) -> Decimal:
        return 1 - self.orchestration_share - sum(self.allocations.values(), Decimal(0))


class ModelPrice(_Strict):
    """A price in USD per million units; what is left out falls back as documented."""

    input: Annotated[Decimal, Field(ge=0)] | None = None
    output: Annotated[Decimal, Field(ge=0)] | None = None
    cache_read: Annotated[Decimal, Field(ge=0)] | None = None
    cache_write: Annotated[Decimal, Field(ge=0)] | None = None
    cache_write_1h: Annotated[Decimal, Field(ge=0)] | None = None
    per_million_characters: Annotated[Decimal, Field(ge=0)] | None = None
    per_thousand_searches: Annotated[Decimal, Field(ge=0)] | None = Field(
        default=None, description="USD per 1,000 server-side web searches (research.web_search)"
    )
    batch_discount: Annotated[Decimal, Field(ge=0, le=1)] | None = None


class ProviderSettings(_Strict):
    """How to reach one provider. The wire format (`api`) is kept apart from the endpoint and the
    credentials, so one OpenAI-compatible adapter serves OpenAI, Ollama, vLLM, llama.cpp and
    LM Studio under names of your choosing."""

    api: Literal["anthropic", "gemini", "openai"] | None = None
    base_url: WebUrl | None = None
    api_key_env: str | None = Field(
        default=None,
        description="environment variable holding the key; '' for a server that needs none",
    )
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    prompt_cache: bool = Field(
        default=True,
        description="mark cache breakpoints (Anthropic); off only to measure what caching saves",
    )


class Retries(_Strict):
    """The engine's retry policy (SDK-level retries are off, so this is the only one)."""

    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    base_delay_s: Annotated[float, Field(ge=0)] = 1.0
    max_wait_s: Annotated[float, Field(ge=0)] = 30.0
    breaker_threshold: Annotated[int, Field(ge=1)] = 3
    breaker_cooldown_s: Annotated[float, Field(ge=0)] = 60.0


def _check_email(address: str) -> str:
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    try:
        parsed = Address(addr_spec=address)
    except (HeaderParseError, ValueError, IndexError):
        parsed = None
    if parsed is None or not parsed.username or "." not in parsed.domain:
        raise ValueError(f"{address!r} is not an email address; write e.g. owner@example.org")
    return address


def _check_category(text: str) -> str:
    from castline.publish.categories import parse_category

    return str(parse_category(text))


Email = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_email)]
AppleCategory = Annotated[Text, AfterValidator(_check_category)]


class Feed(_Strict):
    """Where the episodes are published and what podcast directories learn about the show.

    A feed is a local preview unless `public` is set: a preview is marked so that no directory
    lists it (`itunes:block`, `podcast:block`), and a public one must say where it is served
    and whom directories may contact, checked when the show bible is loaded."""

    public: bool = Field(
        default=False,
        description="true: the feed is meant for Apple Podcasts, Spotify and the Podcast Index "
        "(needs base_url, owner_email, a category and artwork); false: a local preview",
    )
    base_url: WebUrl | None = Field(
        default=None,
        description="public URL under which output_dir is served, e.g. https://example.org/pod",
    )
    owner_name: Annotated[Text, Field(max_length=255)] | None = Field(
        default=None, description="itunes:owner's name; show.author when unset"
    )
    owner_email: Email | None = Field(
        default=None,
        description="itunes:owner's email, and podcast:locked's owner: where directories "
        "verify that the show is yours",
    )
    categories: Annotated[list[AppleCategory], Field(max_length=3)] = Field(
        default_factory=list,
        description="Apple categories, the first the main one: 'Science' or "
        "'Science > Earth Sciences'",
    )
    locked: bool = Field(
        default=True,
        description="podcast:locked: other hosting platforms may not import the feed without "
        "the owner's consent",
    )
    file: Annotated[Text, AfterValidator(_check_file_name)] = "feed.xml"

    @model_validator(mode="after")
    def _public_feed_is_complete(self) -> Feed:
        if not self.public:
            return self
        missing = [
            f"{key} ({why})"
            for key, why, given in (
                ("base_url", "where apps download the feed and episodes", self.base_url),
                ("owner_email", "how Apple and Spotify verify the show is yours", self.owner_email),
                ("categories", "Apple lists a show under a category", self.categories),
            )
            if not given
        ]
        if missing:
            raise ValueError(
                f"a public feed needs {', '.join(missing)}; set them under `feed:`, or set "
                "`feed.public: false` for a local preview"
            )
        return self


class Audio(_Strict):
    """How episodes are voiced and mastered."""

    voice: bool = Field(default=True, description="false: publish the script only, no audio")
    engine: Text = Field(
        default="espeak",
        description="espeak (offline), piper (offline, a voice model file per host), openai, "
        "elevenlabs, gemini, or a provider named under `providers:` with `api: openai` (an "
        "OpenAI-compatible speech server)",
    )
    model: Text | None = Field(
        default=None,
        description="the engine's model (e.g. tts-1-hd, eleven_multilingual_v2, "
        "gemini-3.8-flash-tts); its default when unset",
    )
    loudness_lufs: Annotated[float, Field(ge=-30, le=-10)] = -16.0
    true_peak_db: Annotated[float, Field(ge=-6, le=0)] = -1.0
    bitrate_kbps: Literal[64, 96, 128, 160, 192] = 128
    channels: Literal[1, 2] = 1
    sample_rate: Literal[22050, 44100] = 44100
    turn_pause_s: Annotated[float, Field(ge=0, le=3)] = 0.35
    segment_pause_s: Annotated[float, Field(ge=0, le=5)] = 1.0
    intro_music: Text | None = None
    outro_music: Text | None = None
    music_gain_db: Annotated[float, Field(ge=-40, le=0)] = -18.0
    ducking_db: Annotated[float, Field(ge=-40, le=0)] = -12.0
    concurrency: Annotated[int, Field(ge=1, le=16)] = 4


class Quality(_Strict):
    consensus_threshold: Annotated[float, Field(ge=0, le=1)] = DEFAULT_CONSENSUS_THRESHOLD
    tolerance: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.2, description="evaluators further apart than this escalate"
    )
    escalation: Literal["tiebreaker", "human"] = "tiebreaker"
    max_revision_rounds: Annotated[int, Field(ge=0, le=5)] = 2
    review_timeout_hours: Annotated[float, Field(gt=0)] = 72.0
    on_timeout: Literal["reject", "approve"] = Field(
        default="reject", description="what an unanswered review becomes after the timeout"
    )


class Research(_Strict):
    max_questions: Annotated[int, Field(ge=1, le=20)] = 10
    notes_per_question: Annotated[int, Field(ge=1, le=40)] = 18
    batch: bool = Field(
        default=False,
        description="send research questions through the provider's batch API: half the "
        "price, minutes to hours slower; economy mode batches them anyway",
    )
    allow_private_urls: bool = Field(
        default=False,
        description="let URL sources be fetched from loopback, private and link-local "
        "addresses (an intranet wiki); off, such a URL is refused before the run",
    )
    web_search: bool = Field(
        default=False,
        description="let the researcher search the web with its provider's own search (Claude's "
        "web search tool, Gemini's Google Search grounding); each search is priced and reserved",
    )
    searches_per_question: Annotated[int, Field(ge=1, le=10)] = Field(
        default=3, description="the most web searches one research question may make"
    )


def _check_route(entry: str) -> str:
    provider, sep, model = entry.partition(":")
    if not sep or not provider or not model:
        raise ValueError(f"{entry!r} is not of the form 'provider:model' (e.g. 'anthropic:...')")
    return entry


RouteName = Annotated[str, AfterValidator(_check_route)]


class Show(_Strict):
    """The show bible: everything castline needs to know about a show, validated."""

    show: ShowInfo
    hosts: Annotated[list[Host], Field(min_length=1, max_length=4)]
    brand_voice: BrandVoice
    rules: Rules = Rules()
    episode: EpisodeDefaults = EpisodeDefaults()
    budget: Budget = Budget()
    routing: dict[Role, Annotated[list[RouteName], Field(min_length=1)]] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTING)
    )
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    retries: Retries = Retries()
    audio: Audio = Audio()
    feed: Feed = Feed()
    publish: Publish = Field(default_factory=lambda: Publish())
    quality: Quality = Quality()
    research: Research = Research()
    output_dir: Text = "episodes"
    # the roles the show bible routes itself (the others take their defaults); not a key
    _routed: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_routed_roles(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Show:
        show: Show = handler(data)
        given = data.get("routing") if isinstance(data, dict) else None
        if isinstance(given, dict):
            show._routed = frozenset(str(role) for role in given)
        return show

    @property
    def routed_roles(self) -> frozenset[str]:
        """The roles the show bible routes itself: every other role takes its default chain."""
        return self._routed

    @field_validator("routing")
    @classmethod
    def _routing_is_complete(cls, routing: dict[Role, list[str]]) -> dict[Role, list[str]]:
        """A role left out keeps its default chain."""
        merged = dict(DEFAULT_ROUTING)
        merged.update(routing)
        return merged

    @field_validator("prices")
    @classmethod
    def _price_keys_are_routes(cls, prices: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        for route in prices:
            _check_route(route)
        return prices

    @field_validator("hosts")
    @classmethod
    def _hosts_are_distinct(cls, hosts: list[Host]) -> list[Host]:
        seen: set[str] = set()
        for host in hosts:
            if host.name.casefold() in seen:
                raise ValueError(
                    f"host name {host.name!r} is used twice; host names must be distinct"
                )
            seen.add(host.name.casefold())
        return hosts

    def host_names(self) -> list[str]:
        return [host.name for host in self.hosts]


def load_show(path: Path) -> Show:
    """Read and validate a show bible, reporting every problem with its line number."""
    return load_yaml(
        path, Show, ShowFileError, missing="file not found; `castline init DIR` creates one"
    )


def load_yaml(
    path: Path,
    model: type[ModelT],
    error: Callable[[Path, list[str]], Exception],
    *,
    missing: str = "file not found",
) -> ModelT:
    """Read a YAML file into `model`; every problem is raised as `error(path, problems)`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, [missing]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(path, [f"cannot be read as UTF-8 text ({exc})"]) from None
    return parse_yaml(text, path, model, error)


def parse_show(text: str, path: Path) -> Show:
    return parse_yaml(text, path, Show, ShowFileError)


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_yaml(
    text: str, path: Path, model: type[ModelT], error: Callable[[Path, list[str]], Exception]
) -> ModelT:
    """Parse a YAML file into `model`, raising `error(path, problems)` with every problem
    located by line and field, unknown keys with what is allowed there."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(path, [f"{where}malformed YAML: {problem}"]) from None
    if not isinstance(data, dict):
        keys = ", ".join(list(model.model_fields)[:3])
        raise error(path, [f"the file must be a YAML mapping with keys {keys}, ..."])
    lines, duplicates = _line_index(node)
    if duplicates:
        raise error(path, duplicates)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(path, [_describe(e, lines, model) for e in exc.errors()]) from None


def _describe(error: Any, lines: dict[tuple[str | int, ...], int], root: type[BaseModel]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    field = ".".join(str(part) for part in loc) or "(top level)"
    line = _nearest_line(loc, lines)
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        field = ".".join(str(part) for part in loc)
        message = f"unknown role {loc[-1]!r}; allowed roles: {', '.join(ROLES)}"
    elif kind == "extra_forbidden":
        parent = loc[:-1]
        keys = _allowed_keys(root, parent)
        hint = f"; allowed here: {', '.join(keys)}" if keys else ""
        message = f"unknown key {loc[-1]!r}{hint}"
    elif kind == "missing":
        message = "is required"
    elif kind == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
        message = "must not be empty or only whitespace; write the text, or remove the entry"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    where = f"line {line}: " if line else ""
    return f"{where}{field}: {message}"


def _allowed_keys(root: type[BaseModel], parent: tuple[str | int, ...]) -> list[str]:
    model = root
    for part in parent:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return sorted(model.model_fields)


def _nearest_line(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 0


def _line_index(
    node: yaml.Node | None,
) -> tuple[dict[tuple[str | int, ...], int], list[str]]:
    """Map each key path of the YAML document to the (1-based) line it starts on, and list the
    keys given twice (YAML loaders silently keep the last one)."""
    index: dict[tuple[str | int, ...], int] = {}
    duplicates: list[str] = []

    def walk(current: yaml.Node, path: tuple[str | int, ...]) -> None:
        index[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                child = (*path, str(key.value))
                line = key.start_mark.line + 1
                if child in index:
                    name = ".".join(str(part) for part in child)
                    duplicates.append(
                        f"line {line}: {name}: duplicate key (first given on line "
                        f"{index[child]}); keep one"
                    )
                    continue
                walk(value, child)
                index[child] = line
        elif isinstance(current, yaml.SequenceNode):
            for position, item in enumerate(current.value):
                walk(item, (*path, position))

    if node is not None:
        walk(node, ())
    return index, duplicates


def show_key(show: Show) -> str:
    """What identifies a show across its episodes (its title, case-insensitively)."""
    return title_key(show.show.title)


def title_key(title: str) -> str:
    return " ".join(title.casefold().split())


def state_dir() -> Path:
    """castline's state directory: `$CASTLINE_HOME`, else `~/.castline`."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".castline"


def database_url() -> str:
    """The run store's URL: `$CASTLINE_DATABASE_URL`, else SQLite in the state directory."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{state_dir() / 'castline.db'}"


# Where a run's published files go besides the local folder (class last: another engineer edits
# the classes above; `Show` names it by a forward reference, resolved by the rebuild below).

DEFAULT_MEDIA_CACHE = "public, max-age=604800"
DEFAULT_FEED_CACHE = "public, max-age=300"
# what stays on this machine: the run's own records, not meant for listeners
DEFAULT_PUBLISH_EXCLUDE = (
    "episode.json",
    "cost-report.json",
    "quality-report.json",
    "report.md",
    "report.html",
    "timeline.json",
    "*.lock",
    ".*",
)


def _check_bucket(name: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name) or ".." in name:
        raise ValueError(
            f"{name!r} is not a bucket name: 3-63 lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def _check_prefix(prefix: str) -> str:
    cleaned = prefix.strip().strip("/")
    if cleaned and any(part in {"", ".", ".."} for part in cleaned.split("/")):
        raise ValueError(f"prefix {prefix!r} has an empty, '.' or '..' part; write e.g. pod/show")
    if not cleaned.isprintable() or "\\" in cleaned:
        raise ValueError(f"prefix {prefix!r} has a backslash or a control character")
    return cleaned


class CacheControl(_Strict):
    """Cache-Control headers: the feed changes with every episode, so caches keep it briefly;
    media rarely change (but `castline voice` can replace an episode's audio under its name)."""

    media: Text = Field(
        default=DEFAULT_MEDIA_CACHE,
        description="every file but the feed; add 'immutable' only if files never change",
    )
    feed: Text = DEFAULT_FEED_CACHE


class Publish(_Strict):
    """Where published files go: the local folder (`output_dir`) always, and with `target: s3`
    also S3-compatible object storage. Credentials are never keys here: they come from the AWS
    environment and config files (AWS_ACCESS_KEY_ID, AWS_PROFILE, a role)."""

    target: Literal["local", "s3"] = "local"
    bucket: Annotated[str, AfterValidator(_check_bucket)] | None = None
    prefix: Annotated[str, AfterValidator(_check_prefix)] = Field(
        default="", description="key prefix under which output_dir is mirrored, e.g. pod/show"
    )
    endpoint_url: WebUrl | None = Field(
        default=None,
        description="an S3-compatible server (MinIO, R2, B2, Wasabi...); AWS when unset",
    )
    region: Text | None = Field(default=None, description="AWS_REGION or the profile's if unset")
    acl: Literal["public-read", "private"] = Field(
        default="public-read",
        description="public-read: feed.base_url points at the bucket; private: a CDN or bucket "
        "policy serves the objects at feed.base_url",
    )
    presign_expires_s: Annotated[int, Field(ge=1, le=604800)] = Field(
        default=3600,
        description="lifetime of the presigned feed link `castline publish` prints for a private "
        "bucket, to check the upload (never put in the feed: it expires)",
    )
    cache_control: CacheControl = CacheControl()
    exclude: list[Text] = Field(
        default_factory=lambda: list(DEFAULT_PUBLISH_EXCLUDE),
        description="file name patterns that are not uploaded (the run's own records)",
    )

    @model_validator(mode="after")
    def _s3_names_a_bucket(self) -> Publish:
        if self.target == "s3" and self.bucket is None:
            raise ValueError("publish.target s3 needs publish.bucket: the bucket to upload to")
        return self


Show.model_rebuild()
