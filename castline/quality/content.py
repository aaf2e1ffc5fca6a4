"""The content gate's check: groundedness. Every factual claim in the script must trace to a
research note (and so to a source).

Claims are checked one by one (`castline.quality.claims`): a number, date or name that no note
contains blocks the script; a claim whose facts are all in the notes but whose wording is far
from them is a warning, a claim for the judged accuracy criterion to verify, never a block.
`bench/bench_claims.py` measures the check on an outside labelled set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from castline.domain import Finding, KnowledgeBase, Script, Verdict
from castline.llm.tasks import ClaimToVerify
from castline.quality import claims
from castline.quality.verdicts import verdict

GATE = "content"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def checked_claims(
    script: Script, kb: KnowledgeBase, known: Iterable[str] = ()
) -> list[claims.ClaimCheck]:
    """Every claim of the script with its verdict; `known` names (hosts, show, source titles)
    are not facts to check."""
    return claims.check_all(claims.extract(script, known=known), kb.notes)


# Claims sent to each evaluator at most, least supported first: a reply stays within its tokens.
MAX_CLAIMS_TO_VERIFY = 20


def claims_to_verify(checks: Iterable[claims.ClaimCheck]) -> list[ClaimToVerify]:
    """The claims only a judge can settle, each with the notes to check it against."""
    pending = sorted((c for c in checks if c.verdict == "to-verify"), key=lambda c: c.score)
    return [
        ClaimToVerify(
            id=check.claim.id,
            segment=check.claim.segment,
            turn=check.claim.turn,
            text=check.claim.text,
            notes=list(
                dict.fromkeys([*([check.note_id] if check.note_id else []), *check.claim.citations])
            ),
        )
        for check in pending[:MAX_CLAIMS_TO_VERIFY]
    ]


def groundedness(script: Script, kb: KnowledgeBase, known: Iterable[str] = ()) -> Verdict:
    checks = checked_claims(script, kb, known)
    findings = [_finding(check) for check in checks if check.verdict != "supported"]
    to_verify = sum(1 for check in checks if check.verdict == "to-verify")
    note = f"{len(checks)} claims, {to_verify} of them for the judges to verify" if checks else ""
    return verdict(GATE, "groundedness", findings, len(checks) or 1, note=note)


def _finding(check: claims.ClaimCheck) -> Finding:
    claim = check.claim
    return Finding(
        check="unsupported-claim" if check.blocking else "claim-to-verify",
        severity="error" if check.blocking else "warning",
        segment=claim.segment,
        turn=claim.turn,
        subject=claim.text,
        message=f"turn {claim.turn} claims {claim.text!r}: {check.reason}",
    )
