"""Captions and chapters files of a mastered episode: WebVTT, SRT and the podcast namespace JSON
transcript and chapters, from a timeline built by hand."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castline.audio.timeline import Chapter, TimedTurn, Timeline
from castline.publish.transcript import (
    MAX_CUE_SECONDS,
    cues,
    podcast_chapters,
    podcast_transcript,
    split_turn,
    srt,
    timestamp,
    webvtt,
)
from castline.text import sentences

LONG = (
    "Asphalt and dark roofs soak up sunlight all afternoon. "
    "After sunset they give that heat back to the street. "
    "So a dense block can stay several degrees warmer than a park nearby, "
    "long after the sun has gone down. "
    "That gap is what people mean by an urban heat island."
)


def turn(
    index: int, speaker: str, text: str, start: float, end: float, segment: str = "s1"
) -> TimedTurn:
    return TimedTurn(index=index, speaker=speaker, segment=segment, text=text, start=start, end=end)


TIMELINE = Timeline(
    turns=[
        turn(0, "Maya", "Welcome to Heat Check.", 0.0, 1.8, "intro"),
        turn(1, "Theo", "Why do cities run hot?", 1.8, 3.25, "s1"),
        turn(2, "Maya", LONG, 3.25, 19.25, "s1"),
        turn(3, "Theo", "Thanks for listening.", 19.25, 20.5, "outro"),
    ],
    chapters=[
        Chapter(segment="intro", title="Welcome", start=0.0, end=1.8),
        Chapter(segment="s1", title="Why cities run hot", start=1.8, end=19.25),
        Chapter(segment="outro", title="Goodbye", start=19.25, end=20.5),
    ],
    duration=20.5,
)

VTT_TIMING = re.compile(
    r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$"
)


def _vtt_seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str) -> list[tuple[str, float, float, str]]:
    """A strict reader of the subset castline writes: (id, start, end, payload) per cue."""
    assert text.startswith("WEBVTT\n\n") and text.endswith("\n") and "\r" not in text
    parsed = []
    for block in text.rstrip("\n").split("\n\n")[1:]:
        identifier, timing, *payload = block.split("\n")
        match = VTT_TIMING.match(timing)
        assert match, timing
        assert "-->" not in identifier and len(payload) == 1 and payload[0].strip()
        assert "-->" not in payload[0]
        start = _vtt_seconds(*match.groups()[:4])
        end = _vtt_seconds(*match.groups()[4:])
        assert end > start
        parsed.append((identifier, start, end, payload[0]))
    return parsed


# --- time formats --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "vtt", "srt_time"),
    [
        (0.0, "00:00:00.000", "00:00:00,000"),
        (3661.5, "01:01:01.500", "01:01:01,500"),
        (59.9996, "00:01:00.000", "00:01:00,000"),
        (125.042, "00:02:05.042", "00:02:05,042"),
        (36000.25, "10:00:00.250", "10:00:00,250"),
        (-0.2, "00:00:00.000", "00:00:00,000"),
    ],
)
def test_timestamps_are_zero_padded_to_the_millisecond(
    seconds: float, vtt: str, srt_time: str
) -> None:
    assert timestamp(seconds) == vtt
    assert timestamp(seconds, separator=",") == srt_time


def test_an_hour_in_the_timing_lines_of_both_formats() -> None:
    late = Timeline(
        turns=[turn(0, "Maya", "Still here.", 3661.5, 3663.0)], chapters=[], duration=3700.0
    )
    assert "1\n01:01:01.500 --> 01:01:03.000\n<v Maya>Still here.</v>\n" in webvtt(late)
    assert srt(late) == "1\n01:01:01,500 --> 01:01:03,000\nMAYA: Still here.\n"


# --- WebVTT --------------------------------------------------------------------------------------


def test_webvtt_of_short_turns_is_exact() -> None:
    short = Timeline(turns=TIMELINE.turns[:2], chapters=[], duration=3.25)
    assert webvtt(short) == (
        "WEBVTT\n"
        "\n"
        "1\n"
        "00:00:00.000 --> 00:00:01.800\n"
        "<v Maya>Welcome to Heat Check.</v>\n"
        "\n"
        "2\n"
        "00:00:01.800 --> 00:00:03.250\n"
        "<v Theo>Why do cities run hot?</v>\n"
    )


def test_webvtt_is_well_formed_numbered_and_voiced() -> None:
    parsed = parse_vtt(webvtt(TIMELINE))
    assert [identifier for identifier, *_ in parsed] == [str(n) for n in range(1, len(parsed) + 1)]
    assert len(parsed) > len(TIMELINE.turns)  # the long turn was split
    voices = [re.match(r"<v ([^>]+)>", payload) for *_, payload in parsed]
    assert all(voices)
    assert next(v.group(1) for v in voices if v) == "Maya"
    assert {v.group(1) for v in voices if v} == {"Maya", "Theo"}
    assert all(payload.endswith("</v>") for *_, payload in parsed)
    starts = [start for _, start, _, _ in parsed]
    assert starts == sorted(starts)
    assert parsed[0][1] == 0.0 and parsed[-1][2] == 20.5


def test_webvtt_escapes_text_and_voice_names() -> None:
    tricky = Timeline(
        turns=[turn(0, "Maya & <Theo>", "Shade & trees beat <asphalt> --> every time.", 0.0, 4.0)],
        chapters=[],
        duration=4.0,
    )
    vtt = webvtt(tricky)
    assert (
        "<v Maya &amp; &lt;Theo&gt;>Shade &amp; trees beat &lt;asphalt&gt; --&gt; every time.</v>"
        in vtt
    )
    (_, _, _, payload) = parse_vtt(vtt)[0]
    body = payload.removeprefix("<v Maya &amp; &lt;Theo&gt;>").removesuffix("</v>")
    assert "<" not in body and ">" not in body
    # SRT has no markup, so the text is left as it was
    assert "MAYA & <THEO>: Shade & trees beat <asphalt> --> every time." in srt(tricky)


def test_a_turn_without_a_speaker_has_no_voice_span_and_an_empty_turn_no_cue() -> None:
    timeline = Timeline(
        turns=[turn(0, " ", "Music fades in.", 0.0, 2.0), turn(1, "Maya", "  ", 2.0, 3.0)],
        chapters=[],
        duration=3.0,
    )
    assert webvtt(timeline) == "WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.000\nMusic fades in.\n"
    assert srt(timeline) == "1\n00:00:00,000 --> 00:00:02,000\nMusic fades in.\n"
    assert webvtt(Timeline(turns=[], chapters=[], duration=0.0)) == "WEBVTT\n"


# --- SRT -----------------------------------------------------------------------------------------


def test_srt_of_short_turns_is_exact() -> None:
    short = Timeline(turns=TIMELINE.turns[:2], chapters=[], duration=3.25)
    assert srt(short) == (
        "1\n"
        "00:00:00,000 --> 00:00:01,800\n"
        "MAYA: Welcome to Heat Check.\n"
        "\n"
        "2\n"
        "00:00:01,800 --> 00:00:03,250\n"
        "THEO: Why do cities run hot?\n"
    )


def test_srt_numbers_every_cue_and_names_every_speaker() -> None:
    blocks = srt(TIMELINE).rstrip("\n").split("\n\n")
    assert len(blocks) == len(cues(TIMELINE))
    for number, block in enumerate(blocks, start=1):
        identifier, timing, text = block.split("\n")
        assert identifier == str(number)
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}", timing)
        assert text.startswith(("MAYA: ", "THEO: "))


# --- splitting long turns ------------------------------------------------------------------------


def test_a_long_turn_is_split_at_sentences_in_order_covering_its_span() -> None:
    long_turn = TIMELINE.turns[2]
    pieces = split_turn(long_turn)
    assert len(pieces) > 1
    assert " ".join(p.text for p in pieces) == " ".join(LONG.split())
    assert all(p.text in LONG for p in pieces)
    # every cue is made of whole sentences
    assert [s for p in pieces for s in sentences(p.text)] == sentences(LONG)
    assert pieces[0].start == long_turn.start and pieces[-1].end == long_turn.end
    for before, after in pairwise(pieces):
        assert before.end == after.start
    assert all(p.speaker == "Maya" and p.turn == 2 for p in pieces)
    assert all(p.end - p.start <= MAX_CUE_SECONDS for p in pieces)


def test_split_times_are_in_proportion_to_characters() -> None:
    text = "One two three four five. " + "Six seven eight nine ten eleven twelve thirteen fourteen."
    first, second = sentences(text)
    pieces = split_turn(turn(0, "Theo", text, 10.0, 30.0), max_seconds=7.0)
    assert [p.text for p in pieces] == [first, second]
    share = len(first) / (len(first) + len(second))
    assert pieces[0].end == pytest.approx(10.0 + 20.0 * share)


def test_short_turns_and_single_long_sentences_stay_whole() -> None:
    assert len(split_turn(turn(0, "Maya", "One. Two. Three.", 0.0, MAX_CUE_SECONDS))) == 1
    one_sentence = "A very long sentence without any break that runs on and on for a while"
    pieces = split_turn(turn(0, "Maya", one_sentence, 0.0, 15.0))
    assert [(p.text, p.start, p.end) for p in pieces] == [(one_sentence, 0.0, 15.0)]


SENTENCE = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(
        st.sampled_from(["heat", "shade", "trees", "roofs", "asphalt", "city"]),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([".", "!", "?"]),
)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(SENTENCE, min_size=1, max_size=12),
    start=st.floats(min_value=0, max_value=5000, allow_nan=False),
    span=st.floats(min_value=0.5, max_value=120, allow_nan=False),
)
def test_splitting_keeps_order_and_covers_the_turn_exactly(
    parts: list[str], start: float, span: float
) -> None:
    text = " ".join(parts)
    original = turn(7, "Maya", text, start, start + span)
    pieces = split_turn(original)
    assert " ".join(p.text for p in pieces) == text
    assert pieces[0].start == original.start and pieces[-1].end == original.end
    assert all(a.end == b.start for a, b in pairwise(pieces))
    assert all(p.end > p.start for p in pieces)
    for piece in pieces:
        if len(sentences(piece.text)) > 1:  # a cue over the limit holds a single sentence
            assert piece.end - piece.start <= MAX_CUE_SECONDS + 1e-9


# --- podcast namespace JSON ----------------------------------------------------------------------


def test_podcast_transcript_has_the_namespace_shape() -> None:
    document = podcast_transcript(TIMELINE)
    assert json.loads(json.dumps(document)) == document
    assert document["version"] == "1.0.0"
    segments = document["segments"]
    assert all(set(s) == {"speaker", "startTime", "endTime", "body"} for s in segments)
    assert segments[0] == {
        "speaker": "Maya",
        "startTime": 0.0,
        "endTime": 1.8,
        "body": "Welcome to Heat Check.",
    }
    assert segments[-1] == {
        "speaker": "Theo",
        "startTime": 19.25,
        "endTime": 20.5,
        "body": "Thanks for listening.",
    }
    assert len(segments) == len(cues(TIMELINE))
    assert " ".join(s["body"] for s in segments if s["speaker"] == "Maya").endswith(
        "urban heat island."
    )
    assert all(isinstance(s["startTime"], float) for s in segments)


def test_podcast_chapters_have_the_namespace_shape() -> None:
    shuffled = TIMELINE.model_copy(update={"chapters": list(reversed(TIMELINE.chapters))})
    document = podcast_chapters(shuffled, title="Why cities run hot")
    assert json.loads(json.dumps(document)) == document
    assert document == {
        "version": "1.2.0",
        "title": "Why cities run hot",
        "chapters": [
            {"startTime": 0.0, "title": "Welcome", "endTime": 1.8},
            {"startTime": 1.8, "title": "Why cities run hot", "endTime": 19.25},
            {"startTime": 19.25, "title": "Goodbye", "endTime": 20.5},
        ],
    }


def test_json_times_are_rounded_to_the_millisecond() -> None:
    timeline = Timeline(
        turns=[turn(0, "Maya", "Hi.", 1 / 3, 2 / 3)],
        chapters=[Chapter(segment="s1", title="Hi", start=1 / 3, end=2 / 3)],
        duration=1.0,
    )
    assert podcast_transcript(timeline)["segments"][0]["startTime"] == 0.333
    assert podcast_chapters(timeline, title="T")["chapters"][0]["endTime"] == 0.667
