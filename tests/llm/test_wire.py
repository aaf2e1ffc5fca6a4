"""What the cloud adapters share: classifying failures, keeping keys out of messages, building a
ProviderError, and parsing a reply into the task's schema."""

from __future__ import annotations

import json

import pytest

from castline.errors import ConfigError, FailureKind, MalformedOutput, ProviderError
from castline.llm.base import Result, Usage
from castline.llm.tasks import FanoutDecision, FanoutTask, Question, ReviewDecisionTask
from castline.llm.wire import classify, failure, missing_sdk, parse_reply, redact

KEY = "sk-ant-test-key-0123456789"
USAGE = Usage(input_tokens=120, output_tokens=30, cache_read_tokens=1000)
REVIEW = ReviewDecisionTask(round=0, max_rounds=2, findings=[])
FANOUT = FanoutTask(
    topic="heat", questions=[Question(text="Why?", focus="causes")], max_questions=1
)
DECISION = {"action": "revise", "segments": ["s1"], "rationale": "s1 lacks a citation."}

# --- classify ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "error_type", "kind"),
    [
        # spend limits win over the status, whatever its code
        (429, "You have reached your API usage limits (spend limit).", None, "spend_limit"),
        (429, "Project exceeded its monthly SPEND LIMIT.", "RESOURCE_EXHAUSTED", "spend_limit"),
        (429, "You exceeded your current quota.", "insufficient_quota", "spend_limit"),
        (429, "insufficient_quota", None, "spend_limit"),
        (400, "Your credit balance is too low.", "invalid_request_error", "spend_limit"),
        (None, "credit balance exhausted", None, "spend_limit"),
        # rate limits
        (429, "Rate limit reached for requests", "rate_limit_error", "rate_limit"),
        (429, "Please retry in 1s.", "RESOURCE_EXHAUSTED", "rate_limit"),
        (429, "The model is overloaded", None, "rate_limit"),  # 429 comes before the text
        # overloads: 529, 503, or the words
        (529, "Overloaded", "overloaded_error", "overloaded"),
        (503, "The server is busy.", None, "overloaded"),
        (503, "The model is overloaded. Please try again later.", "UNAVAILABLE", "overloaded"),
        (500, "Service Unavailable", None, "overloaded"),
        (200, "Overloaded", "overloaded_error", "overloaded"),  # an error event in a stream
        (None, "backend", "UNAVAILABLE", "overloaded"),
        # the rest by status
        (401, "invalid x-api-key", "authentication_error", "auth"),
        (403, "Permission denied.", "PERMISSION_DENIED", "auth"),
        (404, "model: claude-x", "not_found_error", "not_found"),
        (408, "Request timed out", None, "timeout"),
        (500, "Internal server error", "api_error", "server_error"),
        (502, "Bad gateway", None, "server_error"),
        (504, "Gateway timeout", None, "server_error"),
        (400, "invalid request", "invalid_request_error", "invalid_request"),
        (413, "Request too large", "request_too_large", "invalid_request"),
        (422, "Unprocessable", None, "invalid_request"),
        (None, "ConnectError: connection refused", None, "error"),
        (302, "Found", None, "error"),
    ],
)
def test_classify(status: int | None, message: str, error_type: str | None, kind: str) -> None:
    assert classify(status, message, error_type) == kind


def test_classify_a_rejected_gemini_key_as_auth() -> None:
    message = "API key not valid. Please pass a valid API key."

    assert classify(400, message, "INVALID_ARGUMENT") == "auth"


# --- redact --------------------------------------------------------------------------------------


def test_redact_removes_every_occurrence_of_a_real_key() -> None:
    text = f"bad key {KEY}; header x-api-key: {KEY}"

    assert redact(text, KEY) == "bad key [redacted]; header x-api-key: [redacted]"


def test_redact_removes_an_eight_character_key() -> None:
    assert redact("key=abcd1234!", "abcd1234") == "key=[redacted]!"


@pytest.mark.parametrize("secret", ["", None, "k", "abc", "1234567"])
def test_redact_leaves_text_alone_for_a_short_or_missing_secret(secret: str | None) -> None:
    text = "a k abc 1234567 stays as it was"

    assert redact(text, secret) == text


def test_redact_leaves_text_without_the_key_alone() -> None:
    assert redact("nothing secret here", KEY) == "nothing secret here"


# --- failure -------------------------------------------------------------------------------------


def test_failure_names_provider_model_kind_and_status() -> None:
    error = failure("anthropic", "claude-x", 429, "slow down", retry_after="2")

    assert isinstance(error, ProviderError)
    assert not isinstance(error, MalformedOutput)
    assert str(error) == "anthropic claude-x: rate_limit (HTTP 429): slow down"
    assert error.kind == "rate_limit"
    assert error.retry_after == 2.0


def test_failure_without_a_response_says_so() -> None:
    error = failure("gemini", "gemini-x", None, "ConnectError: refused")

    assert str(error) == "gemini gemini-x: error (no response): ConnectError: refused"
    assert error.kind == "error"


@pytest.mark.parametrize(
    ("status", "message", "retry_after", "kind", "kept"),
    [
        (429, "rate limited", "7", "rate_limit", 7.0),
        (429, "rate limited", 1.5, "rate_limit", 1.5),
        (429, "rate limited", "0.25", "rate_limit", 0.25),
        (429, "rate limited", "-4", "rate_limit", 0.0),
        (429, "rate limited", "Wed, 21 Oct 2015 07:28:00 GMT", "rate_limit", None),
        (429, "rate limited", None, "rate_limit", None),
        (429, "spend limit reached", "60", "spend_limit", None),
        (503, "busy", "5", "overloaded", None),
        (529, "Overloaded", "5", "overloaded", None),
        (500, "oops", "5", "server_error", None),
        (400, "bad", "5", "invalid_request", None),
    ],
)
def test_failure_keeps_retry_after_only_for_rate_limits(
    status: int,
    message: str,
    retry_after: str | float | None,
    kind: FailureKind,
    kept: float | None,
) -> None:
    error = failure("openai", "gpt-x", status, message, retry_after=retry_after)

    assert error.kind == kind
    assert error.retry_after == kept


def test_failure_uses_the_error_type_to_classify() -> None:
    error = failure("openai", "gpt-x", 429, "quota", error_type="insufficient_quota")

    assert error.kind == "spend_limit"


def test_failure_redacts_the_key_and_bounds_the_message() -> None:
    message = f"invalid key {KEY} " + "x" * 2000

    error = failure("anthropic", "claude-x", 401, message, secret=KEY, retry_after="3")

    assert error.kind == "auth"
    assert error.retry_after is None
    assert KEY not in str(error)
    assert "[redacted]" in str(error)
    assert len(str(error)) == 600


def test_failure_redacts_a_key_in_the_model_name() -> None:
    error = failure("anthropic", f"model-{KEY}", 404, "not found", secret=KEY)

    assert KEY not in str(error)


def test_missing_sdk_says_how_to_install() -> None:
    error = missing_sdk("anthropic", "anthropic")

    assert isinstance(error, ConfigError)
    assert "pip install 'castline[anthropic]'" in str(error)


# --- parse_reply ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(DECISION),
        f"  \n{json.dumps(DECISION, indent=2)}\n\n",
        f"```json\n{json.dumps(DECISION)}\n```",
        f"```\n{json.dumps(DECISION)}\n```",
        f"```json{json.dumps(DECISION)}```",
        f"\n```json\n{json.dumps(DECISION, indent=2)}\n```\n",
    ],
    ids=["plain", "padded", "fenced-json", "fenced", "fenced-inline", "fenced-padded"],
)
def test_parse_reply_accepts_plain_and_fenced_json(text: str) -> None:
    result = parse_reply(REVIEW, text, USAGE, "claude-x")

    assert isinstance(result, Result)
    assert result.output == REVIEW.output_type.model_validate(DECISION)
    assert result.usage == USAGE
    assert result.model == "claude-x"


def test_parse_reply_returns_the_tasks_output_type() -> None:
    text = json.dumps({"selected": [0], "rationale": "one theme"})

    result = parse_reply(FANOUT, text, USAGE, "gpt-x")

    assert isinstance(result.output, FanoutDecision)
    assert result.output.selected == [0]


@pytest.mark.parametrize(
    "text",
    [
        '{"action": "revise", "segments": ["s1"], "rationale": "cut',  # cut off
        "",
        "   ",
        "Sure! Here is the JSON you asked for.",
        "```json\n{not json}\n```",
        "{'action': 'accept', 'rationale': 'single quotes'}",
    ],
    ids=["truncated", "empty", "blank", "prose", "fenced-garbage", "python-repr"],
)
def test_parse_reply_rejects_invalid_json_with_its_usage(text: str) -> None:
    with pytest.raises(MalformedOutput) as raised:
        parse_reply(REVIEW, text, USAGE, "claude-x")

    bad = raised.value
    assert bad.kind == "malformed"
    assert bad.raw == text  # exactly what the model sent, for the repair turn
    assert bad.usage == USAGE  # it was billed
    assert bad.retry_after is None
    assert str(bad).startswith("claude-x replied with invalid JSON: ")


@pytest.mark.parametrize(
    "data",
    [
        {"action": "maybe", "rationale": "not a choice"},
        {"action": "accept"},
        {**DECISION, "confidence": 0.9},
        [DECISION],
        "accept",
        None,
    ],
    ids=["bad-literal", "missing-field", "extra-field", "list", "string", "null"],
)
def test_parse_reply_rejects_a_schema_mismatch_with_its_usage(data: object) -> None:
    text = json.dumps(data)

    with pytest.raises(MalformedOutput) as raised:
        parse_reply(REVIEW, text, USAGE, "claude-x")

    assert raised.value.kind == "malformed"
    assert raised.value.raw == text
    assert raised.value.usage == USAGE
    assert str(raised.value).startswith("claude-x ")


def test_parse_reply_bounds_the_reason() -> None:
    text = '{"action": "' + "x" * 5000

    with pytest.raises(MalformedOutput) as raised:
        parse_reply(REVIEW, text, USAGE, "claude-x")

    assert len(str(raised.value)) <= len("claude-x replied with invalid JSON: ") + 300


def test_a_schema_mismatch_names_the_field_for_the_repair() -> None:
    with pytest.raises(MalformedOutput) as raised:
        parse_reply(REVIEW, json.dumps({"action": "maybe", "rationale": "x"}), USAGE, "m")

    assert "action" in str(raised.value)


def test_a_deeply_nested_reply_is_malformed_output() -> None:
    with pytest.raises(MalformedOutput) as raised:
        parse_reply(REVIEW, "[" * 5000, USAGE, "claude-x")

    assert raised.value.usage == USAGE
