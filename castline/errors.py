"""castline's error tree. Every message says what is wrong and how to fix it.

    CastlineError
    ├── ConfigError              you misconfigured something; nothing was spent (CLI exit 2)
    │   ├── ShowFileError        the show bible is malformed or invalid (names file, field, line)
    │   ├── SourceError          a source document cannot be read
    │   ├── MusicFileError       the intro or outro music the show bible names cannot be read
    │   ├── ProviderNotFound     a "provider:model" names no registered provider
    │   ├── MissingCredentials   a provider needs an API key that is not set
    │   ├── UnpricedModel        a routed model has no known price
    │   ├── EpisodeNumberTaken   another live run of the show already has that episode number
    │   ├── StoreUnavailable     the state directory or run store cannot be opened or written
    │   ├── SourcesOffTopic      no source shares a word with the episode's topic
    │   └── UsageError           the command cannot act on that run as asked; nothing was done
    │       ├── RunNotFound      no run with that id
    │       └── RunNotResumable  the run is finished, waiting for a person, or running elsewhere
    ├── BudgetRefused            (internal) a call the budget could not fit; never escapes a run
    ├── PublishError             an upload to the publish target failed (names bucket and key)
    ├── RunError                 a run failed (CLI exit 1)
    │   ├── StageFailed          a stage raised; the run is resumable
    │   ├── NothingToCite        research found nothing citable on the topic; resuming cannot help
    │   └── GateRejected         the script still fails its checks after the allowed revisions
    └── ProviderError            a model call failed; `kind` says what the engine may do next
        ├── MalformedOutput      the model replied, was billed, but the reply does not validate
        └── ScriptedFailure      a failure dictated by a test through the scripted provider

Messages never contain secrets: providers raise with the model name, never the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from castline.llm.base import Usage


class CastlineError(Exception):
    """Base class of every error castline raises on purpose."""


class ConfigError(CastlineError):
    """The user's input or configuration is wrong; nothing has been spent."""


class ShowFileError(ConfigError):
    """The show bible cannot be loaded; the message lists every problem with its location."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: the show bible is invalid:\n{listing}")


class SeasonFileError(ConfigError):
    """A batch (season) file cannot be loaded; the message lists every problem with its
    location."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: the batch file is invalid:\n{listing}")


class SourceError(ConfigError):
    """A source document (a file, or a URL) is missing, unreadable or has no text."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"source {path}: {reason}")


class MusicFileError(ConfigError):
    """A music file the show bible names (`audio.intro_music` or `audio.outro_music`) is missing
    or is not audio: checked before a run starts, and again when mastering."""

    def __init__(self, field: str, path: Path, reason: str) -> None:
        self.field = field
        self.path = path
        self.reason = reason
        super().__init__(
            f"{field}: {path}: {reason}; put the file there, or correct `{field}` in the show "
            "bible (a path relative to its directory) or remove it"
        )


class ProviderNotFound(ConfigError):
    """A route names a provider castline does not have."""


class MissingCredentials(ConfigError):
    """A provider needs an API key that is not in the environment."""


class UnpricedModel(ConfigError):
    """A model has no price, so its spend could not be held to the budget."""


class EpisodeNumberTaken(ConfigError):
    """An explicit episode number another run of the show holds: two episodes with one number
    would look like a duplicate in listeners' apps."""

    def __init__(self, number: int, run_id: str, status: str) -> None:
        self.number = number
        self.run_id = run_id
        self.status = status
        super().__init__(
            f"episode number {number} is already run {run_id}'s ({status}); pass another "
            "--number, or leave it out for the show's next number"
        )


class StoreUnavailable(ConfigError):
    """castline's state directory or run store cannot be created, opened or written."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(
            f"the run store {where} cannot be opened: {reason}. Set CASTLINE_HOME to a "
            "directory you can write (or CASTLINE_DATABASE_URL to a database you can reach)"
        )


class SourcesOffTopic(ConfigError):
    """None of the sources shares a content word with the topic: whoever wrote the episode, it
    could not be about the topic and cite them."""


class UsageError(ConfigError):
    """The command cannot act on the run as asked (unknown, finished, not waiting, busy);
    nothing was done or spent."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)


class BudgetRefused(CastlineError):
    """A call the budget could not fit. The pipeline catches it and decides what to do without
    the call; it never leaves a run."""


class PublishError(CastlineError):
    """Uploading published files to the publish target (S3-compatible storage) failed. The
    message names the bucket and key and says how to fix it; it never contains credentials.
    What was uploaded stays, and publishing again uploads only what is missing."""

    def __init__(self, message: str, *, bucket: str | None = None, key: str | None = None) -> None:
        self.bucket = bucket
        self.key = key
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # DBOS pickles a step's error: rebuilt from the message, then the attributes restored
        return (type(self), (str(self),), self.__dict__)


class RunError(CastlineError):
    """A run failed."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)


class RunNotFound(UsageError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"no run with id {run_id!r}; `castline runs` lists the runs in this store",
            run_id=run_id,
        )


class RunNotResumable(UsageError):
    """The run is finished, waiting for a person, or a live process is still working on it."""


class StageFailed(RunError):
    """A stage raised; its completed steps are kept and `castline resume` continues from there."""

    def __init__(self, stage: str, run_id: str, cause: str) -> None:
        self.stage = stage
        self.cause = cause
        super().__init__(
            f"run {run_id} failed in stage {stage!r}: {cause}. "
            f"Fix the cause, then `castline resume {run_id}` continues without repeating "
            "completed steps.",
            run_id=run_id,
        )


class NothingToCite(RunError):
    """Research ended without a single note it could cite on the topic, and not for the budget:
    the inputs stopped the run, so the message says which, and no resume is offered."""


class GateRejected(RunError):
    """The script still fails blocking checks after the allowed revision rounds."""

    def __init__(self, run_id: str, failures: list[str]) -> None:
        self.failures = failures
        listing = "; ".join(failures)
        super().__init__(
            f"run {run_id}: the script still fails its checks after revision: {listing}. "
            "The draft is in the output directory marked as rejected.",
            run_id=run_id,
        )


FailureKind = Literal[
    "rate_limit",
    "overloaded",
    "server_error",
    "timeout",
    "not_found",
    "invalid_request",
    "spend_limit",
    "auth",
    "malformed",
    "error",
]


class ProviderError(CastlineError):
    """A model call failed.

    `kind` classifies the failure for the engine: a rate limit is retried on the same model
    (honouring `retry_after`), an overload, server error or timeout is retried once and then
    falls back along the chain, an unknown model falls back at once, a spend limit or a bad key
    takes the whole provider out of the run, and an invalid request is never retried.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: FailureKind = "error",
        retry_after: float | None = None,
    ) -> None:
        self.kind: FailureKind = kind
        self.retry_after = retry_after
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.kind, self.retry_after))


def _rebuild(
    cls: type[ProviderError], message: str, kind: FailureKind, retry_after: float | None
) -> ProviderError:
    error = cls.__new__(cls)
    ProviderError.__init__(error, message, kind=kind, retry_after=retry_after)
    return error


class MalformedOutput(ProviderError):
    """The model's reply does not validate. It was billed: `usage` is what it cost."""

    def __init__(self, message: str, *, raw: str, usage: Usage) -> None:
        self.raw = raw
        self.usage = usage
        super().__init__(message, kind="malformed")


class ScriptedFailure(ProviderError):
    """A failure a test queued on the scripted provider."""
