"""The integration gate's checks: consistency with the show's earlier episodes (no repeated
segments, no contradicted claims, the same hosts) and handoff completeness (what the voicing
stage needs exists and validates)."""

from __future__ import annotations

from dataclasses import dataclass

from castline.config import Show
from castline.domain import Finding, Outline, Script, Verdict
from castline.quality.content import numbers
from castline.quality.verdicts import verdict
from castline.text import overlap, sentences, terms

GATE = "integration"
REPEAT_SHARE = 0.5  # of a segment's sentences found in one earlier segment
SAME_SUBJECT = 0.7  # term overlap at which two claims are about the same thing


@dataclass(frozen=True)
class EarlierEpisode:
    run_id: str
    title: str
    hosts: list[str]
    script: Script


def checks(
    show: Show, outline: Outline, script: Script, earlier: list[EarlierEpisode]
) -> list[Verdict]:
    segments = len(outline.segments) or 1
    return [
        verdict(GATE, "repetition", repetition(outline, script, earlier), segments),
        verdict(GATE, "contradictions", contradictions(script, earlier), len(script.turns) or 1),
        verdict(GATE, "host-continuity", host_continuity(show, earlier), 1),
        verdict(GATE, "handoff", handoff(show, outline, script), segments),
    ]


def _normal(sentence: str) -> str:
    return " ".join(sentence.casefold().split())


def repetition(outline: Outline, script: Script, earlier: list[EarlierEpisode]) -> list[Finding]:
    """Body segments that say what an earlier episode said (an intro and an outro are meant to
    sound the same every week)."""
    findings: list[Finding] = []
    segment_ids = [s.id for s in outline.segments if s.kind == "body"]
    for segment_id in segment_ids:
        mine = {
            _normal(s)
            for t in script.segment_turns(segment_id)
            for s in sentences(t.text)
            if len(s.split()) >= 8
        }
        if not mine:
            continue
        for episode in earlier:
            for other_id in dict.fromkeys(t.segment for t in episode.script.turns):
                theirs = {
                    _normal(s)
                    for t in episode.script.segment_turns(other_id)
                    for s in sentences(t.text)
                }
                share = len(mine & theirs) / len(mine)
                if share >= REPEAT_SHARE:
                    findings.append(
                        Finding(
                            check="repeated-segment",
                            segment=segment_id,
                            subject=episode.run_id,
                            message=f"segment {segment_id} repeats {share:.0%} of segment "
                            f"{other_id} of the earlier episode {episode.title!r} "
                            f"(run {episode.run_id})",
                        )
                    )
                    break
            else:
                continue
            break
    return findings


def contradictions(script: Script, earlier: list[EarlierEpisode]) -> list[Finding]:
    """A claim about the same thing as an earlier episode's claim, with different numbers."""
    findings: list[Finding] = []
    before = [
        (episode, s, set(terms(s)), numbers(s))
        for episode in earlier
        for t in episode.script.turns
        for s in sentences(t.text)
        if numbers(s)
    ]
    for index, turn in enumerate(script.turns):
        for sentence in sentences(turn.text):
            stated = numbers(sentence)
            if not stated:
                continue
            subject = set(terms(sentence))
            for episode, old, old_terms, old_numbers in before:
                if stated != old_numbers and overlap(subject, old_terms) >= SAME_SUBJECT:
                    findings.append(
                        Finding(
                            check="contradiction",
                            segment=turn.segment,
                            turn=index,
                            subject=sentence,
                            message=f"turn {index} says {sentence!r} but the episode "
                            f"{episode.title!r} said {old!r}",
                        )
                    )
                    break
    return findings


def host_continuity(show: Show, earlier: list[EarlierEpisode]) -> list[Finding]:
    hosts = set(show.host_names())
    return [
        Finding(
            check="host-continuity",
            severity="warning",
            message=f"the hosts changed since {episode.title!r}: "
            f"{', '.join(sorted(set(episode.hosts) ^ hosts))}",
        )
        for episode in earlier[:1]
        if set(episode.hosts) != hosts
    ]


def handoff(show: Show, outline: Outline, script: Script) -> list[Finding]:
    """What the voicing stage needs: a turn per outlined segment, every speaker a host with a
    voice."""
    findings: list[Finding] = []
    voiced = {host.name for host in show.hosts if host.voices}
    for host in show.hosts:
        if host.name not in voiced:
            findings.append(
                Finding(
                    check="handoff",
                    severity="warning",
                    message=f"host {host.name} has no voice for any TTS engine; add `voices:` "
                    "to the host in show.yaml before voicing",
                )
            )
    present = {turn.segment for turn in script.turns}
    findings += [
        Finding(
            check="handoff",
            segment=segment.id,
            message=f"segment {segment.id} has nothing to voice",
        )
        for segment in outline.segments
        if segment.id not in present
    ]
    return findings
